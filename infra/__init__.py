"""Settings, clients, the local stack, migrations, deployment files."""
