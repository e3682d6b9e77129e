"""Account mail flows: registration with welcome and verification emails, password reset."""
