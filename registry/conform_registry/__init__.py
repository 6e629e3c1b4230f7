"""The CONFORM crowd-sourcing registry service (reserved: not implemented yet).

The folder exists because ARCHITECTURE.md fixes the layout; the service arrives with its
own issue (see shared/docs/design.md section 2 for the plan).
"""
