using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.Registry;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Runtimes;

/// <summary>The images and a private dockerd, shared by one class's tests (dockerd takes a second or two to start).</summary>
public sealed class DockerFixture : IDisposable
{
    public RuntimeImages Images { get; } = new();
    public DockerDaemon Daemon { get; } = new();

    public void Dispose()
    {
        Daemon.Dispose();
        Images.Dispose();
    }
}

/// <summary>
/// oci import-docker against a real dockerd 20.10 through its Engine API (no docker CLI in the
/// import); the docker client then runs the loaded image, so the chunked image really runs.
/// </summary>
public class DockerImportTests(DockerFixture fx) : IClassFixture<DockerFixture>
{
    private DockerDaemon Docker => fx.Daemon;

    private JsonNode Import(params string[] args)
    {
        var r = TreechunkCli.Run(["oci", "import-docker", "--docker-host", Docker.Host, .. args, "--json"]);
        Assert.True(r.ExitCode == 0, $"{r}\n--- dockerd log\n{Docker.Log}");
        return JsonNode.Parse(r.Stdout)!;
    }

    private JsonNode Inspect(string name) => JsonNode.Parse(Docker.Check("image", "inspect", name))!.AsArray().Single()!;

    /// <summary>Docker's view of the loaded image is the image we built, and it runs: cat prints the tree's own os-release.</summary>
    private void DockerRunsIt(string name, BuiltImage image)
    {
        var inspect = Inspect(name);
        Assert.Equal(image.ConfigDigest, (string)inspect["Id"]!);
        Assert.Equal(image.DiffIds, inspect["RootFS"]!["Layers"]!.AsArray().Select(l => (string)l!));
        Assert.Equal(RuntimeImages.ExpectedLabels, inspect["Config"]!["Labels"]!.AsObject().ToDictionary(kv => kv.Key, kv => (string)kv.Value!));
        Assert.Contains(name, inspect["RepoTags"]!.AsArray().Select(t => (string)t!));

        var run = Docker.Run("run", "--rm", "--network", "none", name, "cat", "/etc/os-release");
        Assert.True(run.ExitCode == 0, $"{run}\n--- dockerd log\n{Docker.Log}");
        Assert.Equal(fx.Images.TreeFile("etc/os-release"), Encoding.UTF8.GetBytes(run.Stdout));
    }

    [Fact]
    public void Import_docker_then_docker_run_prints_the_trees_os_release()
    {
        var json = Import(fx.Images.Gzip.Ref, "--tag", "example/os:v1");
        Assert.Equal("docker", (string)json["engine"]!);
        // example/os is docker.io/example/os to docker, which shows it without the registry.
        Assert.Equal("docker.io/example/os:v1", (string)json["name"]!);
        Assert.Equal(["example/os:v1"], json["loaded"]!.AsArray().Select(l => (string)l!));
        Assert.Equal(fx.Images.Gzip.ConfigDigest, (string)json["config_digest"]!);
        Assert.Equal(0, (int)json["recompressed_layers"]!);
        Assert.False((bool)json["pulled"]!);

        DockerRunsIt("example/os:v1", fx.Images.Gzip);
    }

    [Fact]
    public void Docker_host_comes_from_DOCKER_HOST_and_the_name_from_the_reference()
    {
        var r = TreechunkCli.RunWithEnv(Docker.Env, "oci", "import-docker", fx.Images.Gzip.Ref);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.StartsWith($"docker: loaded localhost/os:v1 (image id {fx.Images.Gzip.ConfigDigest}", r.Stdout);
        DockerRunsIt("localhost/os:v1", fx.Images.Gzip);
    }

    [Fact]
    public void Zstd_image_is_recompressed_said_so_and_runs_with_the_same_diff_ids()
    {
        var r = TreechunkCli.Run("oci", "import-docker", "--docker-host", Docker.Host, fx.Images.Zstd.Ref, "--tag", "example/os-zstd:v1");
        Assert.True(r.ExitCode == 0, $"{r}\n--- dockerd log\n{Docker.Log}");
        int layers = fx.Images.Zstd.LayerDigests.Count;
        Assert.Contains($"warning: {layers} of {layers} layers are zstd, which a docker-archive cannot hold: recompressing them to gzip", r.Stderr);
        Assert.Contains($"{layers} recompressed to gzip", r.Stdout);
        DockerRunsIt("example/os-zstd:v1", fx.Images.Zstd);

        var json = Import(fx.Images.Zstd.Ref, "--tag", "example/os-zstd:json");
        Assert.Equal(layers, (int)json["recompressed_layers"]!);
        Assert.NotEqual(fx.Images.Zstd.ManifestDigest, (string)json["archive_manifest_digest"]!);
    }

    [Fact]
    public void Seed_flags_pull_from_a_registry_into_docker_named_after_the_registry_image()
    {
        using var tmp = new TempDir("docker-reg");
        using var registry = RegistryServer.StartAnonymous();
        var env = RegistryClientTests.Env(tmp);
        RegistryClientTests.Json(env, "oci", "push", "--insecure", fx.Images.Gzip.Ref, $"docker://{registry.Host}/os/base:42");
        foreach (var (k, v) in Docker.Env) env[k] = v;

        var json = RegistryClientTests.Json(env, "oci", "import-docker", "--insecure", "--registry", registry.Host, "--repository", "os/base", "--tag", "42");
        Assert.True((bool)json["pulled"]!);
        Assert.Equal($"{registry.Host}/os/base:42", (string)json["name"]!);
        DockerRunsIt($"{registry.Host}/os/base:42", fx.Images.Gzip);
    }

    [Fact]
    public void A_corrupt_layer_fails_the_import_naming_it_and_docker_loads_nothing()
    {
        using var tmp = new TempDir("docker-corrupt");
        var before = Docker.Check("images", "-a", "-q", "--no-trunc");
        var (corrupt, blob) = fx.Images.CorruptCopy(tmp["layout"]);
        var r = TreechunkCli.Run("oci", "import-docker", "--docker-host", Docker.Host, corrupt, "--tag", "example/corrupt:v1");
        Assert.Equal(1, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"treechunk: error: layer blob sha256:{blob} is corrupt", line);
        Assert.Equal(before, Docker.Check("images", "-a", "-q", "--no-trunc"));
        Assert.False(Docker.Run("image", "inspect", "example/corrupt:v1").ExitCode == 0);
    }

    [Fact]
    public void A_saved_docker_archive_loads_with_docker_load_too()
    {
        using var tmp = new TempDir("docker-save");
        TreechunkCli.Check("oci", "save", fx.Images.Zstd.Ref, "--format", "docker-archive", "--tag", "example/saved:v1", tmp["os.tar"]);
        var loaded = Docker.Check("load", "-i", tmp["os.tar"]);
        Assert.Contains("Loaded image: example/saved:v1", loaded);
        DockerRunsIt("example/saved:v1", fx.Images.Zstd);
    }

    [Fact]
    public void A_source_image_that_does_not_exist_is_one_line_and_nothing_is_loaded()
    {
        using var tmp = new TempDir("docker-none");
        var before = Docker.Check("images", "-q", "--no-trunc");
        var env = new Dictionary<string, string>(Docker.Env);
        var line = RegistryClientTests.Fails(env, 2, "oci", "import-docker", $"oci:{tmp["missing"]}:v1");
        Assert.StartsWith("treechunk: error: ", line);
        Assert.Contains(tmp["missing"], line);
        line = RegistryClientTests.Fails(env, 2, "oci", "import-docker", $"oci:{fx.Images.Gzip.Layout}:no-such-tag");
        Assert.Contains("no-such-tag", line);
        Assert.Equal(before, Docker.Check("images", "-q", "--no-trunc"));
    }
}
