using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Runtimes;

/// <summary>
/// oci save, oci import-podman and oci import-docker, checked by what skopeo and podman report
/// about what treechunk wrote: labels, diff_ids, manifest digest.
/// </summary>
public sealed class RuntimeTests
{
    private const string Label = "org.example.runtime=yes";

    /// <summary>Builds the small runnable tree into oci:DIR/img:t1 and returns (reference, our inspect).</summary>
    private static (string Reference, JsonNode Inspect) BuildImage(TempDir tmp)
    {
        RunnableTree.Create(tmp["tree"]);
        var reference = $"oci:{tmp["img"]}:t1";
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["tree"], "--output", reference, "--label", Label);
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", reference, "--json"))!;
        return (reference, inspect);
    }

    private static List<string> DiffIds(JsonNode inspect) =>
        inspect["config"]!["rootfs"]!["diff_ids"]!.AsArray().Select(d => (string)d!).ToList();

    [Fact]
    public void Save_docker_archive_and_oci_archive_agree_with_skopeo_and_are_reproducible()
    {
        var skopeo = Tools.Require("skopeo");
        using var tmp = new TempDir("save");
        var (reference, ours) = BuildImage(tmp);
        var diffIds = DiffIds(ours);
        Assert.True(diffIds.Count >= 2, "the runnable tree should split into several layers");

        TreechunkCli.Check("oci", "save", reference, "--format", "docker-archive", tmp["d1.tar"]);
        var theirs = JsonNode.Parse(Proc.Check(skopeo, "inspect", $"docker-archive:{tmp["d1.tar"]}"))!;
        Assert.Equal("yes", (string)theirs["Labels"]!["org.example.runtime"]!);
        var theirConfig = JsonNode.Parse(Proc.Check(skopeo, "inspect", "--config", $"docker-archive:{tmp["d1.tar"]}"))!;
        Assert.Equal(diffIds, theirConfig["rootfs"]!["diff_ids"]!.AsArray().Select(d => (string)d!));
        // docker-archive layers are uncompressed: skopeo names each by its diff_id.
        Assert.Equal(diffIds, theirs["Layers"]!.AsArray().Select(l => (string)l!));

        TreechunkCli.Check("oci", "save", reference, "--format", "oci-archive", tmp["o1.tar"]);
        var raw = Proc.RunBytes(skopeo, ["inspect", "--raw", $"oci-archive:{tmp["o1.tar"]}"], []);
        var rawDigest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(raw));
        Assert.Equal((string)ours["manifest_digest"]!, rawDigest);

        TreechunkCli.Check("oci", "save", reference, "--format", "docker-archive", tmp["d2.tar"]);
        TreechunkCli.Check("oci", "save", reference, "--format", "oci-archive", tmp["o2.tar"]);
        Assert.Equal(File.ReadAllBytes(tmp["d1.tar"]), File.ReadAllBytes(tmp["d2.tar"]));
        Assert.Equal(File.ReadAllBytes(tmp["o1.tar"]), File.ReadAllBytes(tmp["o2.tar"]));
    }

    [Fact]
    public void Import_podman_into_private_storage_shows_the_tag_labels_and_diff_ids()
    {
        using var tmp = new TempDir("podman");
        var (reference, ours) = BuildImage(tmp);
        // A private storage and libpod state (PodmanStore), removed with its directory: `podman
        // system reset` would also remove the machine-wide /run/libpod under any podman running
        // in parallel.
        using var podman = new PodmanStore();
        TreechunkCli.Check(podman.Env, ["oci", "import-podman", reference, .. podman.Flags, "--tag", "localhost/tctest:v1"]);
        Assert.Contains("localhost/tctest:v1", podman.Names());
        var inspect = podman.Inspect("localhost/tctest:v1");
        Assert.Equal("yes", (string)inspect["Labels"]!["org.example.runtime"]!);
        Assert.Equal(DiffIds(ours), inspect["RootFS"]!["Layers"]!.AsArray().Select(l => (string)l!));
    }

    [Fact]
    public void Unknown_format_is_one_clear_error()
    {
        using var tmp = new TempDir("badfmt");
        var (reference, _) = BuildImage(tmp);
        var line = TreechunkCli.Fails(null, "oci", "save", reference, "--format", "tarball", tmp["x.tar"]);
        Assert.StartsWith("treechunk: error:", line);
        Assert.Contains("tarball", line);
        Assert.False(File.Exists(tmp["x.tar"]));
    }

    [Fact]
    public void Nonexistent_source_image_is_one_clear_error()
    {
        using var tmp = new TempDir("nosrc");
        var line = TreechunkCli.Fails(null, "oci", "save", $"oci:{tmp["missing"]}:t1", "--format", "docker-archive", tmp["x.tar"]);
        Assert.StartsWith("treechunk: error:", line);
        Assert.False(File.Exists(tmp["x.tar"]));
    }

    [Fact]
    public void Import_docker_to_a_missing_socket_says_no_socket_at()
    {
        using var tmp = new TempDir("nosock");
        var (reference, _) = BuildImage(tmp);
        var line = TreechunkCli.Fails(null, "oci", "import-docker", reference, "--docker-host", "unix:///nonexistent.sock");
        Assert.StartsWith("treechunk: error:", line);
        Assert.Contains("no socket at", line);
        Assert.Contains("/nonexistent.sock", line);
    }

    [Fact]
    public void Import_podman_without_podman_on_PATH_is_one_clear_error()
    {
        using var tmp = new TempDir("nopodman");
        var (reference, _) = BuildImage(tmp);
        var r = TreechunkCli.RunWithEnv(new Dictionary<string, string> { ["PATH"] = tmp["empty-path"] },
            "oci", "import-podman", reference, "--root", tmp["root"], "--runroot", tmp["run"], "--storage-driver", "vfs");
        Assert.NotEqual(0, r.ExitCode);
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith("warning:")).ToList();
        Assert.Single(lines);
        Assert.StartsWith("treechunk: error:", lines[0]);
        Assert.Contains("podman", lines[0]);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void Import_docker_into_a_private_dockerd_runs_the_trees_cat()
    {
        using var tmp = new TempDir("docker");
        var (reference, ours) = BuildImage(tmp);
        using var daemon = new DockerDaemon();
        var imported = TreechunkCli.Check("oci", "import-docker", reference, "--docker-host", daemon.Host, "--tag", "localhost/tctest:v1");
        Assert.Contains("localhost/tctest:v1", imported);
        Assert.Contains("localhost/tctest:v1", daemon.Check("images", "--format", "{{.Repository}}:{{.Tag}}").Split('\n', StringSplitOptions.TrimEntries));
        var inspect = JsonNode.Parse(daemon.Check("image", "inspect", "localhost/tctest:v1"))!.AsArray().Single()!;
        Assert.Equal((string)ours["manifest"]!["config"]!["digest"]!, (string)inspect["Id"]!);
        Assert.Equal(DiffIds(ours), inspect["RootFS"]!["Layers"]!.AsArray().Select(l => (string)l!));
        Assert.Equal("yes", (string)inspect["Config"]!["Labels"]!["org.example.runtime"]!);
        var r = daemon.Run("run", "--rm", "--network", "none", "localhost/tctest:v1", "/" + RunnableTree.Cat, "/etc/os-release");
        Assert.True(r.ExitCode == 0, $"docker run failed: {r}\n{daemon.Log}");
        Assert.Equal(System.Text.Encoding.UTF8.GetString(RunnableTree.OsRelease), r.Stdout);
    }
}
