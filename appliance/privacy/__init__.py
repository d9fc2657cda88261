"""The privacy lifecycle of the data this box keeps: how long each kind lives (retention,
legal hold), what a person can ask for (find, export, correct, restrict, erase), account
deletion with a grace period, and which flows can leave the box. docs/privacy.md is the
admin's view of the same."""
