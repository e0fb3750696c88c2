using System.Text.Json.Nodes;
using Treechunk.Registry;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Registry;

public class RegistryNameTests
{
    [Theory]
    [InlineData("127.0.0.1:5000/os/base:v1", "127.0.0.1:5000", "os/base", "v1", null)]
    [InlineData("quay.io/example/myapp", "quay.io", "example/myapp", null, null)]
    [InlineData("localhost/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "localhost", "app", null, "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")]
    [InlineData("nginx:1.25", "docker.io", "library/nginx", "1.25", null)]
    [InlineData("someone/tool", "docker.io", "someone/tool", null, null)]
    [InlineData("index.docker.io/library/debian:12", "docker.io", "library/debian", "12", null)]
    [InlineData("[::1]:5000/a/b:c", "[::1]:5000", "a/b", "c", null)]
    public void Parses_docker_references(string text, string host, string repo, string? tag, string? digest)
    {
        var (name, t, d) = RegistryName.Parse(text, text);
        Assert.Equal((host, repo, tag, digest), (name.Host, name.Repository, t, d));
    }

    [Theory]
    [InlineData("quay.io/Example/app", "invalid repository name")]
    [InlineData("quay.io/a//b", "invalid repository name")]
    [InlineData("quay.io/a:bad tag", "invalid tag")]
    [InlineData("quay.io/a@sha256:123", "invalid or unsupported digest")]
    [InlineData("", "names no repository")]
    public void Refuses_bad_references(string text, string message) =>
        Assert.Contains(message, Assert.Throws<TreechunkException>(() => RegistryName.Parse(text, text)).Message);

    [Fact]
    public void Docker_hub_is_reached_at_registry_1() => Assert.Equal("registry-1.docker.io", RegistryName.Parse("busybox", "busybox").Name.Endpoint);

    [Fact]
    public void Challenge_parameters_keep_quoted_commas() =>
        Assert.Equal("repository:a/b:pull,push", AuthHandler.Params("realm=\"https://auth.example/token\",service=\"reg\",scope=\"repository:a/b:pull,push\"")["scope"]);
}

/// <summary>
/// registries.conf and the auth files as podman and skopeo read them, seen through
/// `oci registry list`, in processes with their own HOME and runtime dir.
/// </summary>
public class RegistrySettingsTests
{
    private static Dictionary<string, string> Env(TempDir tmp, params (string, string)[] extra)
    {
        Directory.CreateDirectory(tmp["home"]);
        Directory.CreateDirectory(tmp["run"]);
        var env = new Dictionary<string, string>
        {
            ["HOME"] = tmp["home"], ["XDG_RUNTIME_DIR"] = tmp["run"], ["XDG_CONFIG_HOME"] = tmp["home/.config"],
            ["CONTAINERS_REGISTRIES_CONF"] = tmp["none.conf"], ["DOCKER_CONFIG"] = tmp["home/.docker"], ["REGISTRY_AUTH_FILE"] = "",
        };
        foreach (var (k, v) in extra) env[k] = v;
        return env;
    }

    private static JsonArray List(Dictionary<string, string> env)
    {
        var r = TreechunkCli.RunWithEnv(env, "oci", "registry", "list", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonNode.Parse(r.Stdout)!["registries"]!.AsArray();
    }

    [Fact]
    public void Main_file_and_drop_ins_merge_in_name_order_and_v1_lists_count()
    {
        using var tmp = new TempDir("regconf");
        File.WriteAllText(tmp["main.conf"], """
            unqualified-search-registries = ["docker.io"]
            [[registry]]
            location = "a.example:5000"
            insecure = false
            [[registry.mirror]]
            location = "mirror.example"
            [[registry]]
            prefix = "b.example/team"
            location = "b.example/team"
            blocked = true
            """);
        var env = Env(tmp, ("CONTAINERS_REGISTRIES_CONF", tmp["main.conf"]));
        Directory.CreateDirectory(tmp["home/.config/containers/registries.conf.d"]);
        File.WriteAllText(tmp["home/.config/containers/registries.conf.d/10-a.conf"], "[[registry]]\nlocation = \"a.example:5000\"\ninsecure = true\n");
        File.WriteAllText(tmp["home/.config/containers/registries.conf.d/20-old.conf"], "[registries.insecure]\nregistries = ['c.example']\n");
        File.WriteAllText(tmp["home/.config/containers/registries.conf.d/ignored.txt"], "not toml at all [[[");
        var rows = List(env).ToDictionary(r => (string)r!["registry"]!, r => r!);
        Assert.True((bool)rows["a.example:5000"]["insecure"]!);           // the drop-in overrides the main file
        Assert.Equal("mirror.example", (string)rows["a.example:5000"]["mirrors"]![0]!); // and keeps what it does not set
        Assert.True((bool)rows["b.example/team"]["blocked"]!);
        Assert.True((bool)rows["c.example"]["insecure"]!);

        // A blocked registry is refused before any connection.
        var blocked = TreechunkCli.RunWithEnv(env, "oci", "inspect", "docker://b.example/team/app:1");
        Assert.Equal(2, blocked.ExitCode);
        Assert.Contains("b.example is blocked in", blocked.Stderr);

        // A syntax error is one clear line naming the file.
        File.WriteAllText(tmp["home/.config/containers/registries.conf.d/30-bad.conf"], "[[registry]\nlocation = ");
        var bad = TreechunkCli.RunWithEnv(env, "oci", "registry", "list");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("30-bad.conf: not a readable registries.conf", bad.Stderr);
    }

    [Fact]
    public void Registry_config_writes_a_drop_in_that_registry_list_reads_back()
    {
        using var tmp = new TempDir("regconf-write");
        var env = Env(tmp);
        var r = TreechunkCli.RunWithEnv(env, "oci", "registry", "config", "--registry", "127.0.0.1:5999", "--insecure=true", "--mirror", "127.0.0.1:6000", "--upload-chunk-size", "8M", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var file = (string)JsonNode.Parse(r.Stdout)!["file"]!;
        Assert.StartsWith(tmp["home/.config/containers/registries.conf.d/"], file);
        var row = List(env).Single(x => (string)x!["registry"]! == "127.0.0.1:5999")!;
        Assert.True((bool)row["insecure"]!);
        Assert.Equal(8L << 20, (long)row["upload_chunk_size"]!);
        Assert.Equal("127.0.0.1:6000", (string)row["mirrors"]![0]!);
        // Changing one setting keeps the others.
        TreechunkCli.RunWithEnv(env, "oci", "registry", "config", "--registry", "127.0.0.1:5999", "--insecure=false");
        row = List(env).Single(x => (string)x!["registry"]! == "127.0.0.1:5999")!;
        Assert.False((bool)row["insecure"]!);
        Assert.Equal(8L << 20, (long)row["upload_chunk_size"]!);
    }

    [Fact]
    public void Credentials_come_from_the_first_auth_file_in_podmans_order_and_are_never_printed()
    {
        using var tmp = new TempDir("regauth");
        var env = Env(tmp);
        Directory.CreateDirectory(tmp["run/containers"]);
        Directory.CreateDirectory(tmp["home/.docker"]);
        File.WriteAllText(tmp["none.conf"], "[[registry]]\nlocation = \"r.example\"\n[[registry]]\nlocation = \"h.example\"\n[[registry]]\nlocation = \"d.example\"\n");
        string Auth(string user, string pass) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(user + ":" + pass));
        File.WriteAllText(tmp["run/containers/auth.json"], $"{{\"auths\":{{\"r.example\":{{\"auth\":\"{Auth("runtime", "s3cret-runtime")}\"}}}}}}");
        File.WriteAllText(tmp["home/.docker/config.json"],
            $"{{\"auths\":{{\"https://r.example/v1/\":{{\"auth\":\"{Auth("docker", "s3cret-docker")}\"}},\"d.example\":{{\"auth\":\"{Auth("docker", "s3cret-d")}\"}}}},\"credHelpers\":{{\"h.example\":\"treechunktest\"}}}}");
        // A credential helper on PATH, answering as docker-credential-* helpers do.
        Directory.CreateDirectory(tmp["bin"]);
        File.WriteAllText(tmp["bin/docker-credential-treechunktest"], "#!/bin/sh\nread server\necho \"{\\\"ServerURL\\\":\\\"$server\\\",\\\"Username\\\":\\\"helper\\\",\\\"Secret\\\":\\\"s3cret-helper\\\"}\"\n");
        Proc.Check("chmod", "+x", tmp["bin/docker-credential-treechunktest"]);
        env["PATH"] = tmp["bin"] + ":" + Environment.GetEnvironmentVariable("PATH");

        var r = TreechunkCli.RunWithEnv(env, "oci", "registry", "list", "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        var rows = JsonNode.Parse(r.Stdout)!["registries"]!.AsArray().ToDictionary(x => (string)x!["registry"]!, x => x!);
        Assert.Equal(tmp["run/containers/auth.json"], (string)rows["r.example"]["credentials_from"]!);
        Assert.Equal("docker-credential-treechunktest", (string)rows["h.example"]["credentials_from"]!);
        Assert.Equal(tmp["home/.docker/config.json"], (string)rows["d.example"]["credentials_from"]!);
        Assert.DoesNotContain("s3cret", r.Stdout + r.Stderr);
        var text = TreechunkCli.RunWithEnv(env, "oci", "registry", "list");
        Assert.DoesNotContain("s3cret", text.Stdout + text.Stderr);
        // REGISTRY_AUTH_FILE is the only file when it is set.
        File.WriteAllText(tmp["only.json"], "{\"auths\":{}}");
        env["REGISTRY_AUTH_FILE"] = tmp["only.json"];
        rows = JsonNode.Parse(TreechunkCli.RunWithEnv(env, "oci", "registry", "list", "--json").Stdout)!["registries"]!.AsArray().ToDictionary(x => (string)x!["registry"]!, x => x!);
        Assert.False((bool)rows["r.example"]["credentials"]!);
    }
}
