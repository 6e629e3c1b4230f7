"""BraInCoRL in-context encoder plugin (reserved: no component yet, so no entry point).

The folder exists because ARCHITECTURE.md fixes the layout; the encoder arrives with its
own issue (see shared/docs/braincorl.md for the plan).
"""
