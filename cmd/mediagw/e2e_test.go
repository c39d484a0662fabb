package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

// TestBinaryOnEmbeddedEmulator builds the real mediagw binary, runs it with
// no X configuration (the built-in emulator) and uses it as a new user
// would: a REST upload, a watch to SUCCEEDED, the service over reflection,
// then SIGTERM.
func TestBinaryOnEmbeddedEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "mediagw")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--emulator", "--media-checks=off", "--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0", "--admin-addr=127.0.0.1:0", "--emulator-processing-time=1s")
	// The default ledger lives under the state directory, as for a new user.
	state := t.TempDir()
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+state)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case lines <- m:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var grpcAddr, httpAddr string
	sawEmulator, ledgerPath := false, ""
	timeout := time.After(60 * time.Second)
	for grpcAddr == "" {
		select {
		case m := <-lines:
			if strings.Contains(m["msg"].(string), "built-in X emulator") {
				sawEmulator = true
			}
			if m["msg"] == "upload ledger" {
				ledgerPath, _ = m["path"].(string)
			}
			if m["msg"] == "mediagw serving" {
				grpcAddr, httpAddr = m["grpc_addr"].(string), m["http_addr"].(string)
			}
		case err := <-exited:
			t.Fatalf("mediagw exited: %v\n%s", err, stderr.String())
		case <-timeout:
			t.Fatal("mediagw did not report its addresses within 60s")
		}
	}
	if want := filepath.Join(state, "mediagw", "ledger.db"); ledgerPath != want {
		t.Fatalf("the log names ledger %q, want the default %q", ledgerPath, want)
	}
	if _, err := os.Stat(ledgerPath); err != nil {
		t.Fatalf("the default ledger was not created: %v", err)
	}
	if !sawEmulator {
		t.Fatal("the log does not say the built-in emulator is used")
	}

	data := media("video/mp4", 300<<10, 77)
	res, err := http.Post("http://"+httpAddr+"/v1/media:upload?media_type=video/mp4", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var up map[string]any
	_ = json.NewDecoder(res.Body).Decode(&up)
	res.Body.Close()
	id, _ := up["media_id"].(string)
	if res.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("upload: HTTP %d %v", res.StatusCode, up)
	}
	res, err = http.Get("http://" + httpAddr + "/v1/media/" + id + "/status:watch")
	if err != nil {
		t.Fatal(err)
	}
	var last string
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var line struct {
			Result struct {
				State string `json:"state"`
			} `json:"result"`
		}
		_ = json.Unmarshal(sc.Bytes(), &line)
		last = line.Result.State
	}
	res.Body.Close()
	if last != "PROCESSING_STATE_SUCCEEDED" {
		t.Fatalf("watch ended in %q", last)
	}

	res, err = http.Get("http://" + httpAddr + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Swagger string                    `json:"swagger"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	_ = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if doc.Swagger != "2.0" || doc.Paths["/v1/media:upload"]["post"] == nil || doc.Paths["/v1/media/{media_id}/status:watch"] == nil {
		t.Fatalf("/openapi.json: swagger %q, paths %v", doc.Swagger, doc.Paths)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hc, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hc, err)
	}
	rc, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}})
	rr, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rr.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, " "), "mediagw.v1.MediaUploadService") {
		t.Fatalf("reflection lists %v", names)
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("mediagw did not exit within 30s of SIGTERM")
	}
}
