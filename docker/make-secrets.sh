#!/bin/sh
# Create the three secrets compose mounts (docker/secrets/), once, before the first start.
# Never overwrites: a new MASTER_KEY makes every stored envelope and blob unreadable.
set -eu
cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 0700 secrets
for name in secret_key master_key postgres_password; do
  if [ -e "secrets/$name" ]; then
    echo "secrets/$name exists: kept"
    continue
  fi
  # 32 random bytes as base64url without padding (48 for Django's SECRET_KEY).
  bytes=32
  [ "$name" = secret_key ] && bytes=48
  python3 -c "import secrets, sys; print(secrets.token_urlsafe(int(sys.argv[1])))" "$bytes" \
    >"secrets/$name"
  echo "secrets/$name created"
done
# Compose (without swarm) bind-mounts secret files as they are: the app (uid 10001) and
# PostgreSQL (uid 999) must both read them; the 0700 folder keeps other host users out.
chmod 0444 secrets/*
