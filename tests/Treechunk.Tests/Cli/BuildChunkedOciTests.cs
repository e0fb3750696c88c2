using System.Text.Json.Nodes;
using Treechunk.Posix;
using Treechunk.Tests.Support;
using Treechunk.Trees;

namespace Treechunk.Tests.CommandLine;

/// <summary>A synthetic tree with every entry type, built once into an image that the tests below examine.</summary>
public sealed class SyntheticImageFixture : IDisposable
{
    public TempDir Dir { get; } = new("synthetic");
    public string Rootfs => Dir["rootfs"];
    public string Layout => Dir["image"];
    public ProcResult Build { get; }

    public SyntheticImageFixture()
    {
        SyntheticTree.Create(Rootfs);
        // A socket cannot be stored in an image: it is skipped with a warning.
        // (python, because .NET unlinks a bound socket's file when the socket is disposed)
        Proc.Check("python3", "-c", $"import socket; socket.socket(socket.AF_UNIX).bind('{Path.Join(Rootfs, "tmp/app.sock")}')");
        Build = TreechunkCli.Run("compose", "build-chunked-oci", "--rootfs", Rootfs, "--output", $"oci:{Layout}:v1", "--chunk-size", "64K");
    }

    public List<string> ExpectedSnapshot() => TreeSnapshot.Of(Rootfs, p => p != "tmp/app.sock");

    public void Dispose() => Dir.Dispose();
}

public class BuildChunkedOciTests(SyntheticImageFixture fx) : IClassFixture<SyntheticImageFixture>
{
    [Fact]
    public void Build_succeeds_and_warns_about_the_socket()
    {
        Assert.True(fx.Build.ExitCode == 0, fx.Build.ToString());
        Assert.Contains("skipping socket tmp/app.sock", fx.Build.Stderr);
        Assert.Contains("sha256:", fx.Build.Stdout);
    }

    [Fact]
    public void Skopeo_inspects_the_layout()
    {
        var json = Peers.SkopeoAgrees($"oci:{fx.Layout}:v1");
        Assert.Equal("linux", (string?)json["Os"]);
        Assert.True(json["Layers"]!.AsArray().Count > 1, "expected a chunked image");
    }

    [Fact]
    public void Umoci_unpack_gives_back_the_source_tree()
    {
        using var tmp = new TempDir("umoci");
        Proc.Check(Tools.Require("umoci"), "unpack", "--image", $"{fx.Layout}:v1", tmp["bundle"]);
        TreeSnapshot.AssertEqual(fx.ExpectedSnapshot(), TreeSnapshot.Of(tmp["bundle/rootfs"]));
    }

    [Fact]
    public void Treechunk_extract_gives_back_the_source_tree()
    {
        using var tmp = new TempDir("extract");
        TreechunkCli.Check("oci", "extract", $"oci:{fx.Layout}:v1", tmp["out"]);
        TreeSnapshot.AssertEqual(fx.ExpectedSnapshot(), TreeSnapshot.Of(tmp["out"]));
    }

    [Fact]
    public void Hardlinked_paths_share_one_layer_and_one_inode()
    {
        using var tmp = new TempDir("links");
        TreechunkCli.Check("oci", "extract", $"oci:{fx.Layout}:v1", tmp["out"]);
        var a = Treechunk.Posix.LibC.LStat(tmp["out/usr/share/data/a"]);
        var c = Treechunk.Posix.LibC.LStat(tmp["out/usr/bin/c-link"]);
        Assert.Equal(a.Inode, c.Inode);
        Assert.Equal(3u, a.Nlink);
    }

    [Fact]
    public void Two_builds_give_the_same_manifest_digest()
    {
        using var tmp = new TempDir("repro");
        var first = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci:{tmp["a"]}", "--chunk-size", "64K", "--json"))!;
        var second = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci-archive:{tmp["b.tar"]}", "--chunk-size", "64K", "--json", "--parallel-layers", "1"))!;
        Assert.Equal((string?)first["manifest_digest"], (string?)second["manifest_digest"]);
        var original = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{fx.Layout}:v1", "--json"))!;
        Assert.Equal((string?)first["manifest_digest"], (string?)original["manifest_digest"]);
    }

    [Fact]
    public void Verify_layers_passes_then_names_the_blob_after_one_byte_changes()
    {
        using var tmp = new TempDir("verify");
        Proc.Check("cp", "-a", fx.Layout, tmp["copy"]);
        Assert.Contains("ok:", TreechunkCli.Check("oci", "verify-layers", tmp["copy"]));
        Assert.Contains("ok:", TreechunkCli.Check("oci", "chunk", "verify", $"oci:{tmp["copy"]}:v1"));
        var layers = JsonNode.Parse(TreechunkCli.Check("oci", "layers", tmp["copy"], "--json"))!.AsArray();
        var victim = (string)layers[1]!["digest"]!;
        var path = Path.Join(tmp["copy"], "blobs/sha256", victim[7..]);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(path, bytes);
        var line = TreechunkCli.Fails(1, "oci", "verify-layers", tmp["copy"]);
        Assert.Contains(victim, line);
        Assert.Contains(victim, TreechunkCli.Fails(1, "oci", "chunk", "verify", tmp["copy"]));
    }

    [Fact]
    public void Layers_carry_component_annotations_and_history()
    {
        var manifest = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", fx.Layout, "--json"))!;
        var layers = manifest["manifest"]!["layers"]!.AsArray();
        var history = manifest["config"]!["history"]!.AsArray();
        Assert.Equal(layers.Count, history.Count);
        foreach (var l in layers)
        {
            var comps = (string)l!["annotations"]!["org.treechunk.components"]!;
            Assert.Equal(comps, (string)l["annotations"]!["ostree.components"]!);
            Assert.False(string.IsNullOrEmpty(comps));
        }
        // The user.component xattr overrides: its file is in component my-app.
        var chunks = JsonNode.Parse(TreechunkCli.Check("oci", "chunk", "list", fx.Layout, "--json"))!.AsArray();
        var myApp = chunks.SelectMany(c => c!["components"]!.AsArray()).Single(c => (string?)c!["name"] == "my-app")!;
        Assert.Equal(1, (int)myApp["files"]!);
        Assert.Equal("1970-01-01T00:00:00Z", (string?)manifest["config"]!["created"]);
    }

    [Fact]
    public void Every_layer_carries_its_parent_directories_with_real_owner_and_mode()
    {
        var layers = JsonNode.Parse(TreechunkCli.Check("oci", "layers", fx.Layout, "--json"))!.AsArray();
        foreach (var l in layers)
        {
            var blob = Path.Join(fx.Layout, "blobs/sha256", ((string)l!["digest"]!)[7..]);
            var listing = Proc.Check("tar", "--numeric-owner", "-tvzf", blob).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var names = listing.Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[5].TrimEnd('/')).ToHashSet();
            foreach (var name in names)
                foreach (var ancestor in Treechunk.Trees.TreePaths.Ancestors(name))
                    Assert.Contains(ancestor, names);
            Assert.All(listing, line => Assert.Contains("1970-01-01", line));
            var home = listing.FirstOrDefault(x => x.EndsWith(" home/user/"));
            if (home != null) Assert.StartsWith("drwxr-xr-x 1000/100", home);
        }
    }

    [Fact]
    public void Zstd_and_uncompressed_layers_verify_and_extract()
    {
        using var tmp = new TempDir("zstd");
        foreach (var compression in new[] { "zstd", "none" })
        {
            var layout = tmp[compression];
            TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci:{layout}", "--compression", compression, "--compression-level", compression == "zstd" ? "9" : "0");
            TreechunkCli.Check("oci", "verify-layers", layout);
            Peers.SkopeoAgrees($"oci:{layout}:latest");
            Peers.SkopeoDecompressesToTheDiffIds($"oci:{layout}:latest", tmp[compression + "-dir"]);
            TreechunkCli.Check("oci", "extract", layout, tmp[compression + "-out"]);
            TreeSnapshot.AssertEqual(fx.ExpectedSnapshot(), TreeSnapshot.Of(tmp[compression + "-out"]));
        }
    }

    [Fact]
    public void Writing_a_tag_into_an_existing_layout_keeps_other_images()
    {
        using var tmp = new TempDir("tags");
        Proc.Check("cp", "-a", fx.Layout, tmp["layout"]);
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci:{tmp["layout"]}:v2", "--max-layers", "3");
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci:{tmp["layout"]}:v2", "--max-layers", "2");
        var v1 = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{tmp["layout"]}:v1", "--json"))!;
        var v2 = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{tmp["layout"]}:v2", "--json"))!;
        Assert.Equal(2, (int)v2["layers"]!);
        Assert.True((int)v1["layers"]! > 2);
        var index = JsonNode.Parse(File.ReadAllText(Path.Join(tmp["layout"], "index.json")))!;
        Assert.Equal(2, index["manifests"]!.AsArray().Count);
        // A bare path with two images and no "latest" is ambiguous.
        Assert.Contains("name one with :TAG", TreechunkCli.Fails(2, "oci", "inspect", tmp["layout"]));
    }

    [Fact]
    public void Labels_annotations_and_arch_reach_the_config()
    {
        using var tmp = new TempDir("labels");
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci-archive:{tmp["img.tar"]}:t1",
            "--oci-labels", "org.example.version=1.0.0,org.example.os=linux", "--label", "org.example.x=y",
            "--annotation", "org.example.note=hi", "--arch", "aarch64", "--metrics-file", tmp["metrics.json"]);
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci-archive:{tmp["img.tar"]}:t1", "--json"))!;
        var labels = inspect["config"]!["config"]!["Labels"]!;
        Assert.Equal("1.0.0", (string?)labels["org.example.version"]);
        Assert.Equal("y", (string?)labels["org.example.x"]);
        Assert.Equal("arm64", (string?)inspect["config"]!["architecture"]);
        Assert.Equal("hi", (string?)inspect["manifest"]!["annotations"]!["org.example.note"]);
        var metrics = JsonNode.Parse(File.ReadAllText(tmp["metrics.json"]))!;
        Assert.True((long)metrics["bytes_in"]! > 100_000);
        Assert.True((int)metrics["layers"]! >= 1);
        Assert.NotNull(metrics["phases"]!["write"]);
        // The fixed cost before compressing includes every phase before the first layer.
        var before = new[] { "scan", "components", "plan" }.Sum(k => (double?)metrics["phases"]![k] ?? 0);
        Assert.True((double)metrics["first_layer_after_start"]! >= before, metrics.ToJsonString());
        // Memory per phase: the process's resident set is never below the GC's live heap, and the
        // high-water mark never falls.
        var memory = metrics["memory_after"]!.AsObject();
        Assert.Equal(["scan", "components", "plan", "write", "finalize"], memory.Select(kv => kv.Key));
        double peak = 0;
        foreach (var (phase, m) in memory)
        {
            Assert.True((double)m!["rss_mb"]! >= (double)m["heap_mb"]! && (double)m["rss_mb"]! > 1, $"{phase}: {m.ToJsonString()}");
            Assert.True((double)m["peak_rss_mb"]! >= peak, $"{phase}: {m.ToJsonString()}");
            peak = (double)m["peak_rss_mb"]!;
        }
        var skopeo = Peers.SkopeoAgrees($"oci-archive:{tmp["img.tar"]}:t1");
        Assert.Equal("1.0.0", (string?)skopeo["Labels"]!["org.example.version"]);
        Assert.Equal("arm64", (string?)skopeo["Architecture"]);
    }

    [Fact]
    public void Max_layers_above_docker_limit_warns()
    {
        using var tmp = new TempDir("maxl");
        var r = TreechunkCli.Run("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci:{tmp["o"]}", "--max-layers", "200");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("Docker", r.Stderr);
    }

    [Fact]
    public void Content_based_and_fixed_algorithms_build_valid_images()
    {
        using var tmp = new TempDir("algos");
        foreach (var algo in new[] { "content-based", "fixed" })
        {
            var json = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", fx.Rootfs, "--output", $"oci:{tmp[algo]}",
                "--chunk-algorithm", algo, "--chunk-size", "32K", "--max-layers", "5", "--json"))!;
            Assert.Equal(algo, (string?)json["algorithm"]);
            Assert.InRange(json["layers"]!.AsArray().Count, 2, 5);
            TreechunkCli.Check("oci", "extract", tmp[algo], tmp[algo + "-out"]);
            TreeSnapshot.AssertEqual(fx.ExpectedSnapshot(), TreeSnapshot.Of(tmp[algo + "-out"]));
        }
    }
    [Fact]
    public void Extract_without_root_keeps_what_it_can_and_says_what_it_could_not()
    {
        // The extraction paths that skip chown, mknod and privileged xattrs, run for real as
        // "nobody" (the tests themselves run as root in CI).
        using var tmp = new TempDir("nonroot");
        LibC.Chmod(tmp.Path, 0x1FF); // 0777: nobody writes the target here
        // A copy of the CLI that everybody can read, wherever the checkout lives.
        var published = TreechunkCli.Published;
        Proc.Check("cp", "-a", published != null ? Path.GetDirectoryName(published)! : AppContext.BaseDirectory, tmp["cli"]);
        Proc.Check("chmod", "-R", "a+rX", tmp["cli"]);
        Proc.Check("cp", "-a", fx.Layout, tmp["image"]);
        Proc.Check("chmod", "-R", "a+rX", tmp["image"]);
        string[] cli = published != null ? [Path.Join(tmp["cli"], Path.GetFileName(published))] : ["dotnet", Path.Join(tmp["cli"], "treechunk.dll")];
        var r = Proc.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--",
            .. cli, "oci", "extract", $"oci:{tmp["image"]}:v1", tmp["out"]],
            env: new Dictionary<string, string> { ["HOME"] = tmp.Path, ["DOTNET_CLI_HOME"] = tmp.Path });
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains("not running as root: file owners are not set", r.Stderr);
        Assert.Contains("not running as root: device nodes are not created", r.Stderr);
        Assert.Contains("privileged xattrs are not set", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);

        using var source = DirectoryTree.Open(fx.Rootfs);
        using var extracted = DirectoryTree.Open(tmp["out"]);
        foreach (var e in source.Entries.Where(e => e.Path != "tmp/app.sock"))
        {
            var x = extracted.Find(e.Path);
            if (e.Type is EntryType.CharDevice or EntryType.BlockDevice)
            {
                Assert.Null(x);
                continue;
            }
            Assert.True(x != null, $"{e.Path} is missing");
            Assert.Equal(e.Type, x.Type);
            Assert.Equal((e.Path, Convert.ToString(e.Mode, 8)), (x.Path, Convert.ToString(x.Mode, 8)));
            Assert.Equal((e.Path, 65534, 65534), (x.Path, x.Uid, x.Gid));
            Assert.Equal(e.LinkTarget, x.LinkTarget);
            Assert.Equal(e.Size, x.Size);
            Assert.Equal(e.Xattrs.Where(a => a.Key.StartsWith("user.")).Select(a => a.Key + "=" + Convert.ToHexString(a.Value)),
                         x.Xattrs.Select(a => a.Key + "=" + Convert.ToHexString(a.Value)));
        }
        // Hardlinks stay links, and content arrives intact.
        Assert.Equal(extracted.Find("usr/share/data/a")!.InodeKey, LibC.LStat(tmp["out/usr/bin/c-link"]).Inode);
        Assert.Equal(File.ReadAllBytes(Path.Join(fx.Rootfs, "usr/lib/libfoo.so.1")), File.ReadAllBytes(tmp["out/usr/lib/libfoo.so.1"]));
    }
}
