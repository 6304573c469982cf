// Package kubernetes_test checks deploy/kubernetes: every manifest decodes
// into the k8s.io/api types with no unknown or duplicate field, and the
// pieces fit together (Service and StatefulSet, TLS flags and the secret
// layout certs.sh writes, the pod security settings). k8s.io/api is
// imported by this test only.
package kubernetes_test

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomization.yaml this directory uses;
// decoded strictly too, so a misspelt key fails here as well.
type kustomization struct {
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images"`
}

type manifests struct {
	kust        kustomization
	statefulSet *appsv1.StatefulSet
	service     *corev1.Service
}

// decodeStrict decodes one YAML document into a typed object, refusing
// unknown and duplicate fields, and fields spelt in another case: as the
// API server's strict field validation does. sigs.k8s.io/yaml's
// UnmarshalStrict alone goes through encoding/json, which matches names
// case-insensitively and so accepts "runAsNonroot".
func decodeStrict(doc []byte, what string, into any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("decoding %s: %w", what, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(j, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err == nil {
		err = errors.Join(strictErrs...)
	}
	if err != nil {
		return fmt.Errorf("decoding %s: %w", what, err)
	}
	return nil
}

// decodeObjects decodes every document of a manifest file by its kind.
func decodeObjects(name string, data []byte, m *manifests) error {
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		what := fmt.Sprintf("%s document %d", name, i+1)
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return fmt.Errorf("decoding %s: %w", what, err)
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 StatefulSet":
			m.statefulSet = &appsv1.StatefulSet{}
			if err := decodeStrict(doc, what, m.statefulSet); err != nil {
				return err
			}
		case "v1 Service":
			m.service = &corev1.Service{}
			if err := decodeStrict(doc, what, m.service); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected %q %q (add it to this test)", what, tm.APIVersion, tm.Kind)
		}
	}
	return nil
}

// load reads the kustomization in dir and every resource it lists;
// replace, when set, edits a resource's bytes before decoding.
func load(dir string, replace func(name string, b []byte) []byte) (*manifests, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	m := &manifests{}
	if err := decodeStrict(data, "kustomization.yaml", &m.kust); err != nil {
		return nil, err
	}
	for _, r := range m.kust.Resources {
		b, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			return nil, err
		}
		if replace != nil {
			b = replace(r, b)
		}
		if err := decodeObjects(r, b, m); err != nil {
			return nil, err
		}
	}
	if m.statefulSet == nil || m.service == nil {
		return nil, fmt.Errorf("kustomization lists no StatefulSet or no Service")
	}
	return m, nil
}

func mustLoad(t *testing.T) *manifests {
	t.Helper()
	m, err := load(".", nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A misspelt field anywhere fails: the check this test exists for.
func TestStrictDecodingRefusesTypo(t *testing.T) {
	for _, c := range []struct{ file, from, to string }{
		{"statefulset.yaml", "runAsNonRoot:", "runAsNonroot:"},
		{"statefulset.yaml", "procMount:", "procMonut:"},
		{"service.yaml", "clusterIP:", "clusterIp:"},
	} {
		_, err := load(".", func(name string, b []byte) []byte {
			if name != c.file {
				return b
			}
			if !bytes.Contains(b, []byte(c.from)) {
				t.Fatalf("%s has no %q to misspell", c.file, c.from)
			}
			return bytes.Replace(b, []byte(c.from), []byte(c.to), 1)
		})
		if err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("%s with %q misspelt as %q: got %v, want an unknown field error", c.file, c.from, c.to, err)
		}
	}
}

func TestServiceSelectsStatefulSetPods(t *testing.T) {
	m := mustLoad(t)
	ss, svc := m.statefulSet, m.service
	if ss.Spec.ServiceName != svc.Name {
		t.Errorf("StatefulSet serviceName %q, Service is %q: pods get no DNS names", ss.Spec.ServiceName, svc.Name)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service clusterIP %q, want None (headless: clients pick the pod)", svc.Spec.ClusterIP)
	}
	podLabels := ss.Spec.Template.Labels
	if len(svc.Spec.Selector) == 0 {
		t.Fatal("Service has no selector")
	}
	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selects %s=%s, pods have %q", k, v, podLabels[k])
		}
	}
	sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("StatefulSet selector %v does not match its pod template's labels %v", sel, podLabels)
	}
	ports := map[string]bool{}
	for _, c := range ss.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
	}
	for _, p := range svc.Spec.Ports {
		if !ports[p.TargetPort.String()] {
			t.Errorf("Service port %q targets %q, which no container names", p.Name, p.TargetPort.String())
		}
	}
}

func TestPodSecurity(t *testing.T) {
	m := mustLoad(t)
	spec := m.statefulSet.Spec.Template.Spec
	podSC := spec.SecurityContext
	if podSC == nil {
		t.Fatal("no pod securityContext")
	}
	if spec.HostUsers == nil || *spec.HostUsers {
		t.Error("hostUsers is not false: procMount Unmasked needs a user-namespaced pod")
	}
	containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("container %s: no securityContext", c.Name)
			continue
		}
		nonRoot := podSC.RunAsNonRoot != nil && *podSC.RunAsNonRoot
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
		uid := podSC.RunAsUser
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if !nonRoot || uid == nil || *uid == 0 {
			t.Errorf("container %s: runAsNonRoot %v, runAsUser %v: must run as a non-root user", c.Name, nonRoot, uid)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s is privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("container %s: capabilities do not drop ALL", c.Name)
		} else {
			for _, a := range sc.Capabilities.Add {
				if a != "SETUID" && a != "SETGID" {
					t.Errorf("container %s adds capability %s (only newuidmap/newgidmap's SETUID and SETGID are needed)", c.Name, a)
				}
			}
		}
		if c.Image != "builder" {
			t.Errorf("container %s: image %q, want the placeholder %q the kustomization's images: replaces", c.Name, c.Image, "builder")
		}
	}
	if len(m.kust.Images) == 0 || m.kust.Images[0].Name != "builder" {
		t.Error("kustomization.yaml has no images: entry for the placeholder image \"builder\"")
	}
}

// serveArgs returns the serve container and its flags as name -> value.
func serveArgs(t *testing.T, spec corev1.PodSpec) (corev1.Container, map[string]string) {
	t.Helper()
	for _, c := range spec.Containers {
		args := append(slices.Clone(c.Command), c.Args...)
		if len(args) < 2 || args[0] != "builder" || args[1] != "serve" {
			continue
		}
		flags := map[string]string{}
		for _, a := range args[2:] {
			name, value, ok := strings.Cut(a, "=")
			if !ok || !strings.HasPrefix(name, "--") {
				t.Fatalf("serve argument %q: write flags as --name=value", a)
			}
			flags[name] = value
		}
		return c, flags
	}
	t.Fatal("no container runs builder serve")
	return corev1.Container{}, nil
}

// secretFiles maps each file path the container sees from a secret
// volume to the secret name and key it comes from.
func secretFiles(spec corev1.PodSpec, c corev1.Container) map[string][2]string {
	files := map[string][2]string{}
	for _, vm := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				files[filepath.Join(vm.MountPath, it.Path)] = [2]string{v.Secret.SecretName, it.Key}
			}
		}
	}
	return files
}

// TestServeUsesTLSFromSecret checks the server listens on TCP only with
// its TLS flags, each naming a file of the secret layout certs.sh writes,
// and that certs.sh's server certificate fits the pods' DNS names.
func TestServeUsesTLSFromSecret(t *testing.T) {
	spec := mustLoad(t).statefulSet.Spec.Template.Spec
	c, flags := serveArgs(t, spec)
	if !strings.HasPrefix(flags["--addr"], "tcp://") {
		t.Errorf("serve --addr %q, want tcp://", flags["--addr"])
	}
	files := secretFiles(spec, c)
	wantKeys := map[string]string{"--tlscacert": "ca.crt", "--tlscert": "tls.crt", "--tlskey": "tls.key"}
	secretName := ""
	for flag, key := range wantKeys {
		src, ok := files[flags[flag]]
		if !ok {
			t.Errorf("serve %s=%q is no file of a mounted secret", flag, flags[flag])
			continue
		}
		if src[1] != key {
			t.Errorf("serve %s reads key %q of secret %s, want %q", flag, src[1], src[0], key)
		}
		secretName = src[0]
	}
	if _, ok := flags["--root"]; !ok {
		t.Error("serve has no --root on the state volume")
	}

	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl missing: certs.sh cannot be checked")
		}
		t.Skip("openssl missing: certs.sh not checked")
	}
	dir := t.TempDir()
	out, err := exec.Command("bash", "certs.sh", dir, "farm").CombinedOutput()
	if err != nil {
		t.Fatalf("certs.sh: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(dir, "secret.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var secret corev1.Secret
	if err := decodeStrict(data, "certs.sh's secret.yaml", &secret); err != nil {
		t.Fatal(err)
	}
	if secret.Name != secretName {
		t.Errorf("certs.sh writes secret %q, the StatefulSet mounts %q", secret.Name, secretName)
	}
	for _, key := range wantKeys {
		if len(secret.Data[key]) == 0 {
			t.Errorf("certs.sh's secret has no %s", key)
		}
	}
	checkServerCert(t, secret.Data["ca.crt"], secret.Data["tls.crt"])
}

func parseCert(t *testing.T, what string, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", what)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return c
}

// checkServerCert verifies the server certificate for the names clients
// and probes use, as a server and (for the probes) as a client.
func checkServerCert(t *testing.T, caPEM, certPEM []byte) {
	pool := x509.NewCertPool()
	pool.AddCert(parseCert(t, "ca.crt", caPEM))
	cert := parseCert(t, "tls.crt", certPEM)
	for _, name := range []string{"builder-0.builder", "builder-2.builder.farm.svc.cluster.local", "localhost"} {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("server certificate as the probes' client certificate: %v", err)
	}
}

// TestK8sAPIIsTestOnly keeps the Kubernetes modules out of builder's
// binaries: only this test may import them.
func TestK8sAPIIsTestOnly(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "github.com/builder-dev/builder/...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "k8s.io/") || strings.HasPrefix(p, "sigs.k8s.io/") {
			t.Errorf("a non-test package depends on %s (k8s.io/api is for deploy/kubernetes's test only)", p)
		}
	}
}
