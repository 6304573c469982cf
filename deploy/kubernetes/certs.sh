#!/usr/bin/env bash
# certs.sh DIR [NAMESPACE]: a CA, a server certificate for the
# StatefulSet's pods and a client certificate, with openssl, in DIR; and
# DIR/secret.yaml, the server's Secret `builder-tls` (keys ca.crt, tls.crt,
# tls.key, as statefulset.yaml mounts them): kubectl apply -f DIR/secret.yaml.
# Clients keep DIR/ca.pem, client.pem and client-key.pem; ca-key.pem signs
# more clients and belongs somewhere safe.
set -euo pipefail
dir=${1:?usage: certs.sh DIR [NAMESPACE]}
ns=${2:-default}
days=${DAYS:-365}
mkdir -p "$dir"
cd "$dir"

# Every pod's name under the headless Service (builder-N.builder...), short
# and fully qualified, and localhost for the pods' own probes.
san="DNS:localhost,IP:127.0.0.1,DNS:builder,DNS:builder.$ns.svc,DNS:*.builder,DNS:*.builder.$ns,DNS:*.builder.$ns.svc,DNS:*.builder.$ns.svc.cluster.local"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$days" \
	-subj "/CN=builder CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
# The server's certificate also serves as a client one: the probes run
# curl with it against the pod's own listener.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=builder" \
	-keyout server-key.pem -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
	-extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san") \
	-out server.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=builder client" \
	-keyout client-key.pem -out client.csr 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
	-extfile <(printf 'extendedKeyUsage=clientAuth\n') -out client.pem 2>/dev/null
rm -f server.csr client.csr ca.srl
chmod 0600 ./*-key.pem

b64() { base64 -w0 <"$1"; }
cat >secret.yaml <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: builder-tls
  namespace: $ns
type: Opaque
data:
  ca.crt: $(b64 ca.pem)
  tls.crt: $(b64 server.pem)
  tls.key: $(b64 server-key.pem)
YAML
chmod 0600 secret.yaml
echo "wrote $PWD: kubectl apply -f $PWD/secret.yaml"
