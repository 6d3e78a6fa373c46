#!/usr/bin/env bash
# Security suite: real clients (kcat, confluent-kafka, kafka-python) against a broker with
# PLAINTEXT, SASL_SSL, SSL (mutual TLS) and SASL_PLAINTEXT listeners; certificates made with
# openssl for the run; three-node loopback clusters whose followers fetch over SASL_SSL
# (tests/test_inter_broker.py) and whose users and ACLs outlive a Raft leader
# (tests/test_cluster_security.py); client quotas (tests/test_quotas.py).
#
#   e2e/security/run.sh              # everything
#   e2e/security/run.sh -k mtls      # extra arguments go to pytest
#
# Env: IRONLOG_BIN  the broker binary (default: <repo>/target/debug/ironlog).
# Installs what it needs (e2e/lib/setup.sh): Debian kcat and openssl if missing, and the venv
# e2e/.venv. Exits with pytest's status.
set -euo pipefail
source "$(dirname "$0")/../lib/setup.sh"
e2e_setup kcat openssl
e2e_pytest "$@"
