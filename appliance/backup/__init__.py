"""Backups (docs/backup-format.md): one archive with the database, the key material sealed under
a backup passphrase, the sealed recordings the database references, the config and the TLS
certificate; and the restore that rebuilds a box from it."""


class BackupError(Exception):
    """A backup or a restore that cannot go on; the message fits on one line."""
