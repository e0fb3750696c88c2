using System.Text.Json.Nodes;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Registry;

/// <summary>
/// Our registry client against a real docker-registry 2.8 on a loopback port (started and
/// stopped by each test), with skopeo as the peer that reads and writes the same images. Every
/// command runs as its own process with its own HOME, runtime dir and cache, so credentials,
/// registries.conf and remembered blob locations are the test's own.
/// </summary>
public class RegistryClientTests(SmallLayoutFixture fx) : IClassFixture<SmallLayoutFixture>
{
    internal static Dictionary<string, string> Env(TempDir tmp)
    {
        foreach (var d in new[] { "home", "run", "cache" }) Directory.CreateDirectory(tmp[d]);
        return new Dictionary<string, string>
        {
            ["HOME"] = tmp["home"], ["XDG_RUNTIME_DIR"] = tmp["run"], ["XDG_CACHE_HOME"] = tmp["cache"], ["XDG_CONFIG_HOME"] = tmp["home/.config"],
            ["CONTAINERS_REGISTRIES_CONF"] = tmp["registries.conf"], ["REGISTRY_AUTH_FILE"] = "", ["DOCKER_CONFIG"] = tmp["home/.docker"],
        };
    }

    internal static JsonNode Json(Dictionary<string, string> env, params string[] args)
    {
        var r = TreechunkCli.RunWithEnv(env, [.. args, "--json"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonNode.Parse(r.Stdout)!;
    }

    /// <summary>Runs treechunk and expects one clear error line and the exit code.</summary>
    internal static string Fails(Dictionary<string, string> env, int exit, params string[] args)
    {
        var r = TreechunkCli.RunWithEnv(env, args);
        Assert.True(r.ExitCode == exit, $"expected exit {exit}: {r}");
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning:")).ToList();
        Assert.True(lines.Count == 1, $"expected one line on stderr: {r}");
        Assert.DoesNotContain("   at ", r.Stderr);
        return lines[0];
    }

    private static string SkopeoDigest(string reference, params string[] creds) =>
        (string)JsonNode.Parse(Skopeo.Check(["inspect", "--tls-verify=false", .. creds, reference]))!["Digest"]!;

    private int LayerCount => JsonNode.Parse(TreechunkCli.Check("oci", "layers", fx.Layout, "--json"))!.AsArray().Count;

    [Fact]
    public void Push_pull_repush_and_mount_on_an_anonymous_registry()
    {
        using var tmp = new TempDir("reg-anon");
        using var registry = RegistryServer.StartAnonymous();
        var env = Env(tmp);
        int blobs = LayerCount + 1;

        var push = Json(env, "oci", "push", "--insecure", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/os/base:v1");
        Assert.Equal(fx.Digest, (string)push["digest"]!);
        Assert.Equal(blobs, (int)push["blobs_copied"]!);
        Assert.Equal(blobs, registry.CountBlobUploads("os/base"));
        Assert.Equal(fx.Digest, SkopeoDigest($"docker://{registry.Host}/os/base:v1"));

        // A re-push sends no blob: HEAD answers first.
        registry.ClearRequests();
        var again = Json(env, "oci", "push", "--insecure", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/os/base:v1");
        Assert.Equal(0, (int)again["blobs_copied"]!);
        Assert.Equal(blobs, (int)again["blobs_skipped"]!);
        Assert.Equal(0, registry.CountBlobUploads());
        // The registry has the manifest, so it has its blobs: one HEAD for the manifest, none per blob.
        Assert.Equal(0, registry.Count("HEAD", "/blobs/"));
        Assert.Equal(1, registry.Count("HEAD", "/manifests/"));

        // Another repository of the same registry gets the blobs mounted, not sent.
        registry.ClearRequests();
        var other = Json(env, "oci", "push", "--insecure", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/team/copy:v1");
        Assert.Equal(blobs, (int)other["blobs_mounted"]!);
        Assert.Equal(blobs, registry.CountBlobMounts());
        Assert.Equal(0, registry.CountBlobUploads());
        Assert.Equal(fx.Digest, SkopeoDigest($"docker://{registry.Host}/team/copy:v1"));

        // Pull (the seed's flags) gives the same image, every blob verified.
        var pulled = Json(env, "oci", "pull", "--insecure", "--registry", registry.Host, "--repository", "team/copy", "--tag", "v1", $"oci:{tmp["pulled"]}");
        Assert.Equal(fx.Digest, (string)pulled["digest"]!);
        TreechunkCli.Check("oci", "verify-layers", $"oci:{tmp["pulled"]}:v1");
        var byDigest = Json(env, "oci", "pull", "--insecure", "--registry", registry.Host, "--repository", "team/copy", "--digest", fx.Digest, $"oci:{tmp["bydigest"]}:d");
        Assert.Equal(fx.Digest, (string)byDigest["digest"]!);
    }

    [Fact]
    public void Tags_lists_every_tag_and_unknown_names_are_clear()
    {
        using var tmp = new TempDir("reg-tags");
        using var registry = RegistryServer.StartAnonymous();
        var env = Env(tmp);
        var tags = Enumerable.Range(1, 7).Select(i => $"t{i}").ToList();
        foreach (var t in tags) Json(env, "oci", "push", "--insecure", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/os/tags:{t}");
        var listed = Json(env, "oci", "tags", "--insecure", $"docker://{registry.Host}/os/tags").AsArray().Select(t => (string)t!).ToList();
        Assert.Equal(tags.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        Assert.Contains("no manifest tagged nope", Fails(env, 2, "oci", "inspect", "--insecure", $"docker://{registry.Host}/os/tags:nope"));
        Assert.Contains("no manifest tagged latest", Fails(env, 2, "oci", "inspect", "--insecure", $"docker://{registry.Host}/no/such-repo"));
    }

    [Fact]
    public void Skopeo_reads_what_we_push_and_we_read_what_skopeo_pushes()
    {
        using var tmp = new TempDir("reg-skopeo");
        using var registry = RegistryServer.StartAnonymous();
        var env = Env(tmp);
        Json(env, "oci", "push", "--insecure", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/ours/img:v1");
        Skopeo.Check("copy", "--src-tls-verify=false", $"docker://{registry.Host}/ours/img:v1", $"oci:{tmp["by-skopeo"]}:v1");
        Assert.Equal(fx.Digest, SkopeoDigest($"oci:{tmp["by-skopeo"]}:v1"));

        Skopeo.Check("copy", "--dest-tls-verify=false", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/theirs/img:v1");
        var pulled = Json(env, "oci", "pull", "--insecure", $"docker://{registry.Host}/theirs/img:v1", $"oci:{tmp["by-us"]}");
        Assert.Equal(SkopeoDigest($"docker://{registry.Host}/theirs/img:v1"), (string)pulled["digest"]!);
        TreechunkCli.Check("oci", "verify-layers", $"oci:{tmp["by-us"]}:v1");
    }

    [Fact]
    public void Basic_auth_credentials_from_flags_from_skopeo_login_and_for_skopeo()
    {
        using var tmp = new TempDir("reg-basic");
        using var registry = RegistryServer.StartWithHtpasswd("alice", "wonder-land-7");
        var env = Env(tmp);
        var dest = $"docker://{registry.Host}/private/img:v1";

        Assert.Contains("authentication required", Fails(env, 2, "oci", "push", "--insecure", $"oci:{fx.Layout}:v1", dest));
        var push = Json(env, "oci", "push", "--insecure", "--username", "alice", "--password", "wonder-land-7", $"oci:{fx.Layout}:v1", dest);
        Assert.Equal(fx.Digest, (string)push["digest"]!);

        // A wrong password is one clear line, not a retry storm, and never printed.
        registry.ClearRequests();
        var r = TreechunkCli.RunWithEnv(env, "oci", "inspect", "--insecure", "--debug", "--username", "alice", "--password", "not-the-password-42", dest);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("authentication failed for alice", r.Stderr);
        Assert.DoesNotContain("not-the-password-42", r.Stdout + r.Stderr);
        Assert.True(registry.Requests.Count <= 4, string.Join("\n", registry.Requests));

        // skopeo login writes $XDG_RUNTIME_DIR/containers/auth.json; we read it.
        Skopeo.Check("login", "--tls-verify=false", "--authfile", Path.Join(tmp["run"], "containers/auth.json"), "-u", "alice", "-p", "wonder-land-7", registry.Host);
        Assert.Equal(fx.Digest, (string)Json(env, "oci", "inspect", "--insecure", dest)["manifest_digest"]!);

        // oci registry auth checks and stores credentials where skopeo finds them.
        File.Delete(Path.Join(tmp["run"], "containers/auth.json"));
        var auth = Proc.Run("bash", ["-c", $"echo wonder-land-7 | dotnet '{Path.Join(AppContext.BaseDirectory, "treechunk.dll")}' oci registry auth --insecure --registry {registry.Host} --username alice --password-stdin"], env: env);
        Assert.True(auth.ExitCode == 0, auth.ToString());
        Assert.DoesNotContain("wonder-land-7", auth.Stdout + auth.Stderr);
        var file = Path.Join(tmp["run"], "containers/auth.json");
        Assert.Equal("600", Proc.Check("stat", "-c", "%a", file).Trim());
        var skopeoInspect = Proc.Run(Tools.Require("skopeo"), ["inspect", "--tls-verify=false", dest], env: new Dictionary<string, string> { ["XDG_RUNTIME_DIR"] = tmp["run"], ["HOME"] = tmp["home"] });
        Assert.True(skopeoInspect.ExitCode == 0, skopeoInspect.ToString());
        Assert.Equal(fx.Digest, (string)JsonNode.Parse(skopeoInspect.Stdout)!["Digest"]!);
        // A wrong password is checked before anything is stored.
        var bad = Proc.Run("bash", ["-c", $"echo wrong | dotnet '{Path.Join(AppContext.BaseDirectory, "treechunk.dll")}' oci registry auth --insecure --registry 127.0.0.1:{registry.Port} --username alice --password-stdin"], env: env);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("authentication failed", bad.Stderr);
        // --logout removes them.
        TreechunkCli.RunWithEnv(env, "oci", "registry", "auth", "--registry", registry.Host, "--logout");
        Assert.Contains("authentication required", Fails(env, 2, "oci", "inspect", "--insecure", dest));
    }

    [Fact]
    public void Bearer_tokens_per_scope_and_permissions()
    {
        using var tmp = new TempDir("reg-token");
        using var tokens = new TokenServer();
        tokens.AddUser("bob", "builder-99");
        tokens.AddUser("reader", "read-only-1", (repository, action) => action == "pull");
        using var registry = RegistryServer.StartWithToken(tokens);
        var env = Env(tmp);
        var dest = $"docker://{registry.Host}/tok/img:v1";
        var push = Json(env, "oci", "push", "--insecure", "--username", "bob", "--password", "builder-99", $"oci:{fx.Layout}:v1", dest);
        Assert.Equal(fx.Digest, (string)push["digest"]!);
        Assert.True(tokens.TokensIssued() >= 1);
        // One token for the push scope, not one per request.
        Assert.True(tokens.TokensIssued() <= 3, string.Join("\n", tokens.Requests));
        Assert.Equal(fx.Digest, SkopeoDigest(dest, "--creds", "bob:builder-99"));

        // Neither the password nor a token (a JWT: "eyJ...") shows in output, --verbose and
        // --debug logs, or a metrics file, even when a step fails.
        var loud = TreechunkCli.RunWithEnv(env, "compose", "build-chunked-oci", "--verbose", "--debug", "--insecure", "--username", "bob", "--password", "builder-99",
            "--from", $"oci:{fx.Layout}:v1", "--output", $"docker://{registry.Host}/tok/rechunked:v1", "--metrics-file", tmp["metrics.json"]);
        Assert.True(loud.ExitCode == 0, loud.ToString());
        var denied = TreechunkCli.RunWithEnv(env, "oci", "push", "--verbose", "--debug", "--insecure", "--username", "reader", "--password", "read-only-1",
            $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/tok/denied:v1");
        Assert.NotEqual(0, denied.ExitCode);
        foreach (var text in new[] { loud.Stdout, loud.Stderr, File.ReadAllText(tmp["metrics.json"]), denied.Stdout, denied.Stderr })
        {
            Assert.DoesNotContain("builder-99", text);
            Assert.DoesNotContain("read-only-1", text);
            Assert.DoesNotContain("eyJ", text);
        }
        Assert.Contains("tok/rechunked", loud.Stderr); // the verbose log did say what it did

        var pulled = Json(env, "oci", "pull", "--insecure", "--username", "reader", "--password", "read-only-1", dest, $"oci:{tmp["pulled"]}");
        Assert.Equal(fx.Digest, (string)pulled["digest"]!);
        Assert.Contains("access denied", Fails(env, 2, "oci", "push", "--insecure", "--username", "reader", "--password", "read-only-1", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/tok/other:v1"));
        Assert.Contains("authentication failed for bob", Fails(env, 2, "oci", "inspect", "--insecure", "--username", "bob", "--password", "wrong", dest));
        Assert.Contains("authentication required", Fails(env, 2, "oci", "inspect", "--insecure", dest));

        var test = TreechunkCli.RunWithEnv(env, "oci", "registry", "test", "--insecure", "--registry", registry.Host, "--repository", "tok/img", "--username", "reader", "--password", "read-only-1");
        Assert.Equal(1, test.ExitCode);
        Assert.Contains("ok   pull permission", test.Stdout);
        Assert.Contains("FAIL push permission", test.Stdout);
        Assert.Contains("Bearer authentication", test.Stdout);
        var full = TreechunkCli.RunWithEnv(env, "oci", "registry", "test", "--insecure", "--registry", registry.Host, "--repository", "tok/img", "--username", "bob", "--password", "builder-99");
        Assert.True(full.ExitCode == 0, full.ToString());
    }

    [Fact]
    public void An_expired_token_is_fetched_again()
    {
        using var tokens = new TokenServer { ExpiresIn = TimeSpan.FromSeconds(2) };
        tokens.AddUser("bob", "builder-99");
        using var registry = RegistryServer.StartWithToken(tokens);
        using var tmp = new TempDir("reg-expiry");
        Json(Env(tmp), "oci", "push", "--insecure", "--username", "bob", "--password", "builder-99", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/exp/img:v1");
        using var ctx = new Treechunk.Registry.RegistryContext
        {
            Insecure = true, ExplicitCredential = new Treechunk.Registry.RegistryCredential("bob", "builder-99", "test"),
        };
        var client = ctx.Client(new Treechunk.Registry.RegistryName(registry.Host, "exp/img"));
        Assert.NotNull(client.GetManifest("v1"));
        int before = tokens.TokensIssued();
        Thread.Sleep(TimeSpan.FromSeconds(3));
        Assert.NotNull(client.GetManifest("v1"));
        Assert.Equal(before + 1, tokens.TokensIssued());
    }

    [Fact]
    public void Registry_settings_are_shared_with_skopeo()
    {
        using var tmp = new TempDir("reg-conf");
        using var registry = RegistryServer.StartAnonymous();
        var env = Env(tmp);
        var dest = $"docker://{registry.Host}/conf/img:v1";
        Assert.Contains("--insecure", Fails(env, 3, "oci", "push", $"oci:{fx.Layout}:v1", dest)); // TLS to a plain-HTTP registry
        TreechunkCli.RunWithEnv(env, "oci", "registry", "config", "--registry", registry.Host, "--insecure=true");
        Json(env, "oci", "push", $"oci:{fx.Layout}:v1", dest);
        // skopeo honours the same drop-in: no --tls-verify=false.
        var skopeo = Proc.Run(Tools.Require("skopeo"), ["inspect", dest], env: new Dictionary<string, string> { ["HOME"] = tmp["home"], ["CONTAINERS_REGISTRIES_CONF"] = tmp["registries.conf"] });
        Assert.True(skopeo.ExitCode == 0, skopeo.ToString());
        Assert.Equal(fx.Digest, (string)JsonNode.Parse(skopeo.Stdout)!["Digest"]!);
    }

    [Fact]
    public void Every_image_command_takes_a_docker_reference()
    {
        using var tmp = new TempDir("reg-cmds");
        using var registry = RegistryServer.StartAnonymous();
        var env = Env(tmp);
        var image = $"docker://{registry.Host}/cmd/img:v1";
        Json(env, "oci", "copy", "--insecure", $"oci:{fx.Layout}:v1", image);

        Assert.Equal(fx.Digest, (string)Json(env, "oci", "inspect", "--insecure", image)["manifest_digest"]!);
        Assert.Equal(LayerCount, Json(env, "oci", "layers", "--insecure", image).AsArray().Count);
        Assert.Equal(LayerCount, Json(env, "oci", "chunk", "list", "--insecure", image).AsArray().Count);
        Assert.True((bool)Json(env, "oci", "chunk", "verify", "--insecure", image)["ok"]!);
        Assert.True((bool)Json(env, "oci", "verify-layers", "--insecure", image)["ok"]!);
        Assert.Contains("ok", TreechunkCli.RunWithEnv(env, "oci", "verify-content", "--insecure", "--expected-digest", fx.Digest, image).Stdout);
        var extract = TreechunkCli.RunWithEnv(env, "oci", "extract", "--insecure", image, tmp["rootfs"]);
        Assert.True(extract.ExitCode == 0, extract.ToString());
        Assert.Equal("box\n", File.ReadAllText(tmp["rootfs/etc/hostname"]));
        var digestRef = $"docker://{registry.Host}/cmd/img@{fx.Digest}";
        Assert.Equal(fx.Digest, (string)Json(env, "oci", "inspect", "--insecure", digestRef)["manifest_digest"]!);

        // Builds write straight into the registry, and read from it.
        var built = Json(env, "compose", "build-chunked-oci", "--insecure", "--rootfs", tmp["rootfs"], "--output", $"docker://{registry.Host}/cmd/built:b1");
        Assert.Equal((string)built["manifest_digest"]!, SkopeoDigest($"docker://{registry.Host}/cmd/built:b1"));
        var local = Json(env, "compose", "build-chunked-oci", "--rootfs", tmp["rootfs"], "--output", $"oci:{tmp["local"]}:b1");
        Assert.Equal((string)local["manifest_digest"]!, (string)built["manifest_digest"]!); // the same bytes whatever the destination
        var rechunked = Json(env, "compose", "build-chunked-oci", "--insecure", "--from", image, "--output", $"docker://{registry.Host}/cmd/re:r1", "--max-layers", "2");
        Assert.Equal((string)rechunked["manifest_digest"]!, SkopeoDigest($"docker://{registry.Host}/cmd/re:r1"));

        // OSTree: encapsulate into the registry and import back the same commit.
        Proc.Check(Tools.Require("ostree"), "--repo=" + tmp["repo"], "init", "--mode=archive");
        Proc.Check(Tools.Require("ostree"), "--repo=" + tmp["repo"], "commit", "--branch=os/x", "--timestamp=@1700000000", tmp["rootfs"]);
        var commit = File.ReadAllText(tmp["repo/refs/heads/os/x"]).Trim();
        Json(env, "compose", "container-encapsulate", "--insecure", "--repo", tmp["repo"], "os/x", $"docker://{registry.Host}/cmd/os:1");
        var imported = Json(env, "oci", "import-ostree", "--insecure", $"docker://{registry.Host}/cmd/os:1", "--repo", tmp["repo2"], "--ref", "os/y");
        Assert.Equal(commit, (string)imported["commit"]!);
        Assert.True((bool)imported["exact"]!);
    }

    [Fact]
    public void Build_ostree_pushes_its_image_to_a_registry()
    {
        using var tmp = new TempDir("reg-build-ostree");
        using var registry = RegistryServer.StartAnonymous();
        var env = Env(tmp);
        Proc.Check("bash", Path.Join(Fixtures.RepoRoot, "tests/fixtures/rpm-repo.sh"), tmp["rpms"]);
        Directory.CreateDirectory(tmp["tf"]);
        File.Copy(tmp["rpms/local.repo"], tmp["tf/local.repo"]);
        File.WriteAllText(tmp["tf/treefile.yaml"], "ref: test/rpm\nrepos: [local]\nreleasever: \"1\"\npackages: [hello]\n");
        env["SOURCE_DATE_EPOCH"] = "1700000000";
        var build = Json(env, "compose", "build-ostree", "--insecure", "--repo", tmp["repo"], "--output-oci", $"docker://{registry.Host}/cmd/composed:c1", tmp["tf/treefile.yaml"]);
        Assert.Equal((string)build["manifest_digest"]!, SkopeoDigest($"docker://{registry.Host}/cmd/composed:c1"));
    }

    [Fact]
    public void Bad_registry_input_is_one_clear_line()
    {
        using var tmp = new TempDir("reg-bad");
        var env = Env(tmp);
        int closed = FreePort();
        var start = DateTime.UtcNow;
        Assert.Contains($"cannot reach registry 127.0.0.1:{closed}: connection refused", Fails(env, 3, "oci", "inspect", "--insecure", $"docker://127.0.0.1:{closed}/a/b:c"));
        Assert.True(DateTime.UtcNow - start < TimeSpan.FromSeconds(10), "a refused connection is not retried for long");
        Assert.Contains("invalid repository name", Fails(env, 2, "oci", "inspect", "docker://127.0.0.1:5000/Upper/Case"));
        Assert.Contains("invalid tag", Fails(env, 2, "oci", "inspect", "docker://127.0.0.1:5000/a/b:bad!tag"));
        Assert.Contains("give --registry and --repository together", Fails(env, 2, "oci", "pull", "--registry", "127.0.0.1:5000", tmp["x"]));

        // A registry of our own that misbehaves: a manifest over 4 MiB, and wrong bytes for a digest.
        using var bogus = new BogusRegistry();
        Assert.Contains("larger than 4 MiB", Fails(env, 2, "oci", "inspect", "--insecure", $"docker://{bogus.Host}/big/manifest:huge"));
        // docker-registry 2.8 answers every tag at once; this one pages them with Link headers, as newer registries do.
        var paged = Json(env, "oci", "tags", "--insecure", $"docker://{bogus.Host}/paged/repo", "--page-size", "2").AsArray().Select(t => (string)t!).ToList();
        Assert.Equal(["a", "b", "c", "d", "e"], paged);
        var asked = "sha256:" + new string('1', 64);
        Assert.Contains($"with digest sha256:", Fails(env, 1, "oci", "inspect", "--insecure", $"docker://{bogus.Host}/wrong/manifest@{asked}"));
    }

    private static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>A tiny HTTP server answering /v2/ and two bad manifests (Python's http.server).</summary>
    private sealed class BogusRegistry : IDisposable
    {
        private readonly System.Diagnostics.Process _p;
        public string Host { get; }

        public BogusRegistry()
        {
            int port = FreePort();
            Host = $"127.0.0.1:{port}";
            var script = """
                import http.server, json, sys
                class H(http.server.BaseHTTPRequestHandler):
                    def log_message(self, *a): pass
                    def do_GET(self):
                        if self.path == '/v2/':
                            body = b'{}'
                        elif self.path.startswith('/v2/paged/repo/tags/list'):
                            from urllib.parse import urlparse, parse_qs
                            q = parse_qs(urlparse(self.path).query)
                            n = int(q.get('n', ['1000'])[0]); last = q.get('last', [''])[0]
                            tags = [t for t in 'abcde' if t > last][:n]
                            body = json.dumps({'name': 'paged/repo', 'tags': tags}).encode()
                            self.send_response(200)
                            if tags and tags[-1] != 'e':
                                self.send_header('Link', f'</v2/paged/repo/tags/list?n={n}&last={tags[-1]}>; rel="next"')
                            self.send_header('Content-Type', 'application/json')
                            self.send_header('Content-Length', str(len(body)))
                            self.end_headers(); self.wfile.write(body); return
                        elif self.path.startswith('/v2/big/manifest/manifests/'):
                            body = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                                               'annotations': {'pad': 'x' * (5 << 20)}}).encode()
                        elif self.path.startswith('/v2/wrong/manifest/manifests/'):
                            body = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}'
                        else:
                            self.send_response(404); self.end_headers(); return
                        self.send_response(200)
                        self.send_header('Content-Type', 'application/vnd.oci.image.manifest.v1+json')
                        self.send_header('Docker-Distribution-API-Version', 'registry/2.0')
                        self.send_header('Content-Length', str(len(body)))
                        self.end_headers(); self.wfile.write(body)
                http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
                """;
            _p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("python3") { ArgumentList = { "-c", script, port.ToString() }, UseShellExecute = false })!;
            for (int i = 0; i < 100; i++)
            {
                try
                {
                    using var c = new System.Net.Sockets.TcpClient("127.0.0.1", port);
                    return;
                }
                catch (System.Net.Sockets.SocketException) { Thread.Sleep(50); }
            }
            throw new InvalidOperationException("the bogus registry did not start");
        }

        public void Dispose()
        {
            try { _p.Kill(); } catch (InvalidOperationException) { }
            _p.Dispose();
        }
    }
}
