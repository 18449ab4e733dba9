#!/bin/sh
# Container entrypoint. forqd listens on 0.0.0.0 in here, which it refuses
# without an admin token. With FORQ_ADMIN_TOKEN set, forqd reads it (and
# unsets it); without, a random token is made at the first start and kept in
# the data volume, so no default token is ever shared between installs:
#   docker compose exec -T forqd cat /var/lib/forq/admin-token   (compose v2)
#   docker-compose exec -T forqd cat /var/lib/forq/admin-token   (compose v1)
set -eu
if [ -z "${FORQ_ADMIN_TOKEN:-}" ]; then
	unset FORQ_ADMIN_TOKEN
	f=${FORQ_TOKEN_PATH:-/var/lib/forq/admin-token}
	if [ ! -s "$f" ]; then
		umask 077
		od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$f.new"
		mv "$f.new" "$f"
		echo "forq: made an admin token in $f" >&2
	fi
	set -- --admin-token-file "$f" "$@"
fi
exec "${FORQD:-forqd}" "$@"
