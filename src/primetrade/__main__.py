from primetrade.cli import main

main()
