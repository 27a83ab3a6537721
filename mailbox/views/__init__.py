"""Browser views: mail accounts (accounts.py) and reading mail (mail.py)."""
