using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Compose;

/// <summary>
/// A real apt compose (mmdebstrap) of a small package set, shared by the tests below: the
/// first build-ostree runs once, with a package and layer cache of its own (in its temp dir, so
/// nothing a test asserts on comes from an earlier run).
/// </summary>
public sealed class AptComposeFixture : IDisposable
{
    public TempDir Dir { get; } = new("compose");
    public string CacheDir => Dir["cache"];
    public string Treefile => Dir["tf/treefile.yaml"];
    public string Repo => Dir["repo"];
    public string Image => Dir["image"];
    public ProcResult Build { get; }
    public JsonNode Metrics { get; }

    public const string Epoch = "1700000000";

    public static void WriteTreefile(string dir, string packages, string extra = "")
    {
        Directory.CreateDirectory(dir);
        File.Copy(Path.Join(Fixtures.RepoRoot, "examples/debian-minimal/debian.sources"), Path.Join(dir, "debian.sources"), overwrite: true);
        File.WriteAllText(Path.Join(dir, "treefile.yaml"), $"""
            ref: test/bookworm
            repos: [debian]
            automatic-version-prefix: "1"
            packages: [{packages}]
            add-files:
              - [motd, /etc/motd-treechunk]
            remove-files:
              - usr/share/doc/openssl
            postprocess:
              - |
                echo composed > /etc/composed-by
            container-cmd: ["/bin/bash"]
            oci:
              labels:
                org.example.flavour: test
              max-layers: 40
            {extra}
            """);
        File.WriteAllText(Path.Join(dir, "motd"), "hello from add-files\n");
    }

    public static ProcResult BuildOstree(string treefile, string repo, string output, string cacheDir, params string[] extra) =>
        TreechunkCli.RunWithEnv(new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = Epoch },
            ["compose", "build-ostree", "--repo", repo, "--output-oci", output, "--cache-dir", cacheDir, .. extra, treefile]);

    public AptComposeFixture()
    {
        WriteTreefile(Dir["tf"], "openssl");
        Build = BuildOstree(Treefile, Repo, $"oci:{Image}", CacheDir, "--cache-layers", "--metrics-file", Dir["metrics.json"]);
        Metrics = Build.ExitCode == 0 ? JsonNode.Parse(File.ReadAllText(Dir["metrics.json"]))! : new JsonObject();
    }

    public void Dispose() => Dir.Dispose();
}

public class ComposeCommandTests(AptComposeFixture fx) : IClassFixture<AptComposeFixture>
{
    private static string Ostree => Tools.Require("ostree");

    [Fact]
    public void Apt_compose_gives_a_commit_ostree_accepts_and_an_image_peers_accept()
    {
        Assert.True(fx.Build.ExitCode == 0, fx.Build.ToString());
        Proc.Check(Ostree, "--repo=" + fx.Repo, "fsck");
        var commit = Proc.Check(Ostree, "--repo=" + fx.Repo, "rev-parse", "test/bookworm").Trim();
        Assert.Equal("1", Proc.Check(Ostree, "--repo=" + fx.Repo, "show", "--print-metadata-key=version", commit).Trim().Trim('\''));
        Assert.Equal("1", (string?)Peers.SkopeoAgrees($"oci:{fx.Image}:latest")["Labels"]!["version"]);
        using var tmp = new TempDir("compose-umoci");
        Proc.Check(Tools.Require("umoci"), "unpack", "--image", $"{fx.Image}:latest", tmp["bundle"]);
        var rootfs = tmp["bundle/rootfs"];
        Assert.True(File.Exists(Path.Join(rootfs, "usr/bin/openssl")));
        Assert.Equal("hello from add-files\n", File.ReadAllText(Path.Join(rootfs, "etc/motd-treechunk")));
        Assert.Equal("composed\n", File.ReadAllText(Path.Join(rootfs, "etc/composed-by")));
        Assert.False(Directory.Exists(Path.Join(rootfs, "usr/share/doc/openssl")));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Join(rootfs, "var/lib/apt/lists")).Where(f => !f.EndsWith("/partial") && !f.EndsWith("/lock")));
    }

    [Fact]
    public void The_image_has_dpkg_components_and_the_treefile_labels()
    {
        Assert.True(fx.Build.ExitCode == 0, fx.Build.ToString());
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", fx.Image, "--json"))!;
        var labels = inspect["config"]!["config"]!["Labels"]!;
        Assert.Equal("test", (string?)labels["org.example.flavour"]);
        Assert.Equal("1", (string?)labels["version"]);
        Assert.Equal("/bin/bash", (string?)inspect["config"]!["config"]!["Cmd"]![0]);
        Assert.True((int)inspect["layers"]! <= 41);
        var names = JsonNode.Parse(TreechunkCli.Check("oci", "chunk", "list", fx.Image, "--json"))!.AsArray()
            .SelectMany(c => c!["components"]!.AsArray()).Select(c => (string)c!["name"]!).ToList();
        Assert.Contains("openssl", names);
        Assert.Contains("glibc", names);
        Assert.Contains("ostree-commit", names);
        Assert.True((int)fx.Metrics["packages"]! > 50);
        foreach (var phase in new[] { "install", "commit", "write" }) Assert.NotNull(fx.Metrics["phases"]![phase]);
    }

    [Fact]
    public void Composing_again_with_SOURCE_DATE_EPOCH_gives_the_same_commit_and_image()
    {
        Assert.True(fx.Build.ExitCode == 0, fx.Build.ToString());
        using var tmp = new TempDir("compose-repro");
        var r = AptComposeFixture.BuildOstree(fx.Treefile, tmp["repo"], $"oci:{tmp["image"]}", fx.CacheDir, "--json");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(Proc.Check(Ostree, "--repo=" + fx.Repo, "rev-parse", "test/bookworm").Trim(),
                     Proc.Check(Ostree, "--repo=" + tmp["repo"], "rev-parse", "test/bookworm").Trim());
        var first = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", fx.Image, "--json"))!;
        Assert.Equal((string?)first["manifest_digest"], (string?)JsonNode.Parse(r.Stdout)!["manifest_digest"]);
    }

    [Fact]
    public void A_package_change_recompresses_only_changed_layers_and_bumps_the_version()
    {
        Assert.True(fx.Build.ExitCode == 0, fx.Build.ToString());
        using var tmp = new TempDir("compose-cache");
        AptComposeFixture.WriteTreefile(tmp["tf"], "openssl, less");
        Proc.Check("cp", "-a", fx.Repo, tmp["repo"]);
        // The fixture's build started from an empty cache: it reused nothing.
        Assert.Equal(0, (int)fx.Metrics["packages_from_cache"]!);
        Assert.Equal(0, (int)fx.Metrics["layers_reused"]!);
        Proc.Check("cp", "-a", fx.CacheDir, tmp["cache"]);
        var r = AptComposeFixture.BuildOstree(tmp["tf/treefile.yaml"], tmp["repo"], $"oci:{tmp["image"]}", tmp["cache"], "--cache-layers", "--metrics-file", tmp["m.json"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var m = JsonNode.Parse(File.ReadAllText(tmp["m.json"]))!;
        Assert.Equal("1.1", (string?)m["version"]);
        Assert.True((int)m["layers_reused"]! > 0, m.ToJsonString());
        Assert.True((int)m["layers_compressed"]! < (int)m["layers"]! / 2, m.ToJsonString());
        Assert.True((int)m["packages_from_cache"]! > 0, m.ToJsonString());
    }

    [Fact]
    public void A_failing_postprocess_script_stops_before_any_commit_or_image()
    {
        using var tmp = new TempDir("compose-post");
        AptComposeFixture.WriteTreefile(tmp["tf"], "openssl", "");
        File.AppendAllText(tmp["tf/treefile.yaml"], "");
        var text = File.ReadAllText(tmp["tf/treefile.yaml"]).Replace("echo composed > /etc/composed-by", "echo 'boom: no such thing' >&2; exit 7");
        File.WriteAllText(tmp["tf/treefile.yaml"], text);
        var line = TreechunkCli.Fails(2, ["compose", "build-ostree", "--repo", tmp["repo"], "--output-oci", $"oci:{tmp["image"]}", "--cache-dir", tmp["cache"], tmp["tf/treefile.yaml"]]);
        Assert.Contains("exit code 7", line);
        Assert.Contains("boom: no such thing", line);
        Assert.False(File.Exists(Path.Join(tmp["repo"], "refs/heads/test/bookworm")));
        Assert.False(File.Exists(Path.Join(tmp["image"], "index.json")));
    }

    [Fact]
    public void A_package_that_does_not_exist_is_reported_in_one_line()
    {
        using var tmp = new TempDir("compose-nopkg");
        AptComposeFixture.WriteTreefile(tmp["tf"], "nosuch-package-treechunk");
        var line = TreechunkCli.Fails(null, ["compose", "tree", "--repo", tmp["repo"], "--cache-dir", tmp["cache"], tmp["tf/treefile.yaml"]]);
        Assert.Contains("nosuch-package-treechunk", line);
    }
}

/// <summary>Bad treefiles fail fast, before any package manager runs.</summary>
public class ComposeBadInputTests
{
    [Fact]
    public void Missing_treefile()
    {
        using var tmp = new TempDir();
        Assert.Contains("no such file", TreechunkCli.Fails(2, "compose", "tree", "--repo", tmp["repo"], tmp["nope.yaml"]));
    }

    [Fact]
    public void Yaml_syntax_error_names_line_and_column()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["t.yaml"], "ref: a\npackages: [a, b\nrepos: x\n");
        var line = TreechunkCli.Fails(2, "compose", "build-ostree", "--repo", tmp["repo"], "--output-oci", tmp["o"], tmp["t.yaml"]);
        Assert.Matches(@"line \d+", line);
        Assert.Contains("column", line);
    }

    [Fact]
    public void Unknown_key_suggests_the_right_one()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["t.yaml"], "ref: a\npackagez: [bash]\n");
        Assert.Contains("did you mean 'packages'", TreechunkCli.Fails(2, "compose", "tree", "--repo", tmp["repo"], tmp["t.yaml"]));
    }

    [Fact]
    public void Repo_without_a_definition_file()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["t.yaml"], "ref: a\nrepos: [fedora]\npackages: [bash]\n");
        var line = TreechunkCli.Fails(2, "compose", "tree", "--repo", tmp["repo"], tmp["t.yaml"]);
        Assert.Contains("fedora", line);
        Assert.False(Directory.Exists(Path.Join(tmp["repo"], "objects")));
    }

    [Fact]
    public void Include_cycle()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["a.yaml"], "include: b.yaml\nref: a\n");
        File.WriteAllText(tmp["b.yaml"], "include: a.yaml\n");
        Assert.Contains("cycle", TreechunkCli.Fails(2, "compose", "tree", "--repo", tmp["repo"], tmp["a.yaml"]));
    }
}
