"""The write side of soh-es: account plans, scorecards, stores."""
