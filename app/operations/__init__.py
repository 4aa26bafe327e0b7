"""Operations figures: what the platform did, read from every floor and written to none.

`figures.py` holds the rules (which rows count, how weeks are cut, what a rate divides by) and the
queries; the moderators' operations page (moderation) and the public stats page (main) show them.
"""
