"""Reusable pieces of the backoffice (Django admin at /backoffice/).

- ``dashboard``: the registry of dashboard cards (``dashboard.card(...)``).
- ``actions``: modal actions on a change page (``ModalAction`` + ``ModalActionsMixin``).
- ``search``: list search that finds a row by its id through the primary key index.
- ``display``: small HTML helpers (status badges, pretty JSON).
"""
