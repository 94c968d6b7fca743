#!/usr/bin/env bash
# Initialise an embedded SQLite CRM in this folder (once), enable every module, print the
# administrator's login and serve on http://127.0.0.1:8000. Used by `make run`.
set -euo pipefail
cd "$(dirname "$0")/.."
CRM=.venv/bin/crm
PASSWORD_FILE=.admin-password
export CRM_DATABASE_URL="${CRM_DATABASE_URL:-sqlite:///$PWD/crm.db}"

if [ ! -s "$PASSWORD_FILE" ]; then
  umask 077
  .venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))' > "$PASSWORD_FILE"
fi
$CRM init --admin-email admin@example.com --admin-password "$(cat "$PASSWORD_FILE")"
$CRM modules enable --all
$CRM demo
$CRM analytics refresh
echo
echo "Open http://127.0.0.1:${PORT:-8000}/ and sign in as admin@example.com with password $(cat "$PASSWORD_FILE")"
echo "Demo staff (password demo-password-2026): manager@demo.example, sales1@demo.example (sales alerts waiting),"
echo "sales2@demo.example, service@demo.example, marketing@demo.example"
echo "(API docs: http://127.0.0.1:${PORT:-8000}/docs — change the password with: $CRM users set-password admin@example.com)"
exec $CRM serve --host 127.0.0.1 --port "${PORT:-8000}"
