#!/bin/sh
# Refresh the message catalogs after changing any marked string, from the repository root:
#   sh incus_api/translations/update.sh
# then translate the new msgids in incus_api/translations/zh/LC_MESSAGES/messages.po and run it again
# (the last step compiles the .mo that the app loads; both files are committed).
set -e
PYBABEL=${PYBABEL:-pybabel}
$PYBABEL extract -F babel.cfg -k N_ -k _l --no-location --sort-output -o incus_api/translations/messages.pot .
$PYBABEL update -i incus_api/translations/messages.pot -d incus_api/translations -l zh --no-fuzzy-matching
$PYBABEL compile -d incus_api/translations -l zh --statistics
