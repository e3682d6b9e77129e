"""Emails about a user's tasks: the daily digest and due-date reminders, with opt-outs."""
