"""The Forum Satu Data: sign-off (confirm, withdraw, approve, unlock, the log and its
verification) and the review pages the forum reads before deciding."""
