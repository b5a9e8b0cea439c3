package testenv_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/scimsync/scimsync/internal/testenv"
)

// TestComposeRunsTheTestedCluster: docker-compose.temporal.yml runs the Temporal server
// that CI tests: the server of the same version on the repository's config
// (deploy/temporal, env scimsync), its schema and registration through the same script
// steps, and the worker only once those are done.
func TestComposeRunsTheTestedCluster(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.temporal.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image      string            `yaml:"image"`
			Entrypoint []string          `yaml:"entrypoint"`
			Volumes    []string          `yaml:"volumes"`
			DependsOn  yaml.Node         `yaml:"depends_on"`
			Env        map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	srv := compose.Services["temporal"]
	if srv.Image != "temporalio/server:1.29.1" {
		t.Errorf("temporal image %q, want temporalio/server:1.29.1 (the version CI builds)", srv.Image)
	}
	if !slices.Contains(srv.Volumes, "./deploy/temporal:/etc/temporal/scimsync:ro") ||
		!strings.Contains(strings.Join(srv.Entrypoint, " "), "--config /etc/temporal/scimsync/config --env scimsync") {
		t.Errorf("temporal does not run on deploy/temporal/config: volumes %v, entrypoint %v", srv.Volumes, srv.Entrypoint)
	}
	if _, err := os.Stat(filepath.Join(root, "deploy/temporal/dynamicconfig", filepath.Base(srv.Env["TEMPORAL_DYNAMIC_CONFIG"]))); err != nil {
		t.Errorf("TEMPORAL_DYNAMIC_CONFIG %q is not a file of deploy/temporal/dynamicconfig", srv.Env["TEMPORAL_DYNAMIC_CONFIG"])
	}
	for name, step := range map[string]string{"temporal-schema": "schema", "temporal-register": "register"} {
		s := compose.Services[name]
		if want := []string{"bash", "/scimsync/scripts/temporal-cluster.sh", step}; !slices.Equal(s.Entrypoint, want) {
			t.Errorf("%s runs %v, want %v", name, s.Entrypoint, want)
		}
		if !strings.HasPrefix(s.Image, "temporalio/admin-tools:1.29.1") {
			t.Errorf("%s image %q, want temporalio/admin-tools:1.29.1", name, s.Image)
		}
	}
	var deps map[string]struct {
		Condition string `yaml:"condition"`
	}
	worker := compose.Services["worker"]
	if err := worker.DependsOn.Decode(&deps); err != nil || deps["temporal-register"].Condition != "service_completed_successfully" {
		t.Errorf("the worker does not wait for temporal-register to complete: %v %v", deps, err)
	}
}
