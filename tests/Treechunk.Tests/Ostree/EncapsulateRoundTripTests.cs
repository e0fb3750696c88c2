using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Ostree;

/// <summary>ostree commit -> container-encapsulate -> oci import-ostree gives back the same commit.</summary>
public class EncapsulateRoundTripTests
{
    private static string Ostree => Tools.Require("ostree");

    /// <summary>A tree ostree can commit: every type but device nodes, fifos and sockets.</summary>
    private static void MakeTree(string root)
    {
        SyntheticTree.Create(root);
        Proc.Sh($"cd '{root}' && rm -rf dev && mkdir -p usr/lib/modules/6.1.0 sysroot && printf kernel > usr/lib/modules/6.1.0/vmlinuz");
    }

    private static string OstreeCommit(string repo, string tree, string branch, params string[] extra)
    {
        Proc.Check(Ostree, ["--repo=" + repo, "commit", "--branch=" + branch, "--subject=test commit", "--timestamp=@1700000000", .. extra, tree]);
        return File.ReadAllText(Path.Join(repo, "refs/heads", branch)).Trim();
    }

    [Theory]
    [InlineData("archive")]
    [InlineData("bare-user")]
    public void Round_trip_gives_the_same_commit_checksum(string mode)
    {
        using var tmp = new TempDir("encap");
        MakeTree(tmp["tree"]);
        Proc.Check(Ostree, "--repo=" + tmp["repo"], "init", "--mode=" + mode);
        var commit = OstreeCommit(tmp["repo"], tmp["tree"], "os/test", "--add-metadata-string=version=42.1", "--add-detached-metadata-string=note=hello");

        var build = JsonNode.Parse(TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "os/test", $"oci:{tmp["image"]}:42.1", "--json"))!;
        Assert.Equal(commit, (string?)Peers.SkopeoAgrees($"oci:{tmp["image"]}:42.1")["Labels"]!["ostree.commit"]);
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{tmp["image"]}:42.1", "--json"))!;
        var labels = inspect["config"]!["config"]!["Labels"]!;
        Assert.Equal(commit, (string?)labels["ostree.commit"]);
        Assert.Equal("42.1", (string?)labels["org.opencontainers.image.version"]);
        Assert.Equal("42.1", (string?)labels["version"]);
        Assert.Equal("1", (string?)labels["containers.bootc"]);
        Assert.Equal("true", (string?)labels["ostree.bootable"]);
        var diffIds = inspect["config"]!["rootfs"]!["diff_ids"]!.AsArray();
        Assert.Equal((string?)diffIds[^1], (string?)labels["ostree.final-diffid"]);

        // A second export is byte-identical.
        var again = JsonNode.Parse(TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], commit, $"oci:{tmp["image2"]}", "--json",
            "--metrics-file", tmp["metrics.json"]))!;
        Assert.Equal((string?)build["manifest_digest"], (string?)again["manifest_digest"]);
        // Reading the commit is timed as the scan, like a directory build's scan.
        var phases = JsonNode.Parse(File.ReadAllText(tmp["metrics.json"]))!["phases"]!;
        Assert.True((double)phases["scan"]! > 0, phases.ToJsonString());
        Assert.NotNull(phases["write"]);

        var imported = JsonNode.Parse(TreechunkCli.Check("oci", "import-ostree", $"oci:{tmp["image"]}:42.1", "--repo", tmp["fresh"], "--ref", "os/imported", "--json"))!;
        Assert.Equal(commit, (string?)imported["commit"]);
        Assert.True((bool)imported["exact"]!);
        Proc.Check(Ostree, "--repo=" + tmp["fresh"], "fsck");
        Assert.Equal(commit, Proc.Check(Ostree, "--repo=" + tmp["fresh"], "rev-parse", "os/imported").Trim());
        Assert.Contains("hello", Proc.Check(Ostree, "--repo=" + tmp["fresh"], "show", "--print-detached-metadata-key=note", commit));
    }

    [Fact]
    public void Rechunking_an_encapsulated_image_keeps_its_commit()
    {
        using var tmp = new TempDir("encap-rechunk");
        MakeTree(tmp["tree"]);
        Proc.Check(Ostree, "--repo=" + tmp["repo"], "init", "--mode=archive");
        var commit = OstreeCommit(tmp["repo"], tmp["tree"], "r");
        TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "r", $"oci:{tmp["image"]}");
        TreechunkCli.Check("compose", "build-chunked-oci", "--from", tmp["image"], "--output", $"oci:{tmp["rechunked"]}", "--max-layers", "3", "--compression", "zstd");
        var inspect = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", tmp["rechunked"], "--json"))!;
        // At most 3 planned layers, plus the commit layer, which stays last.
        Assert.InRange((int)inspect["layers"]!, 2, 4);
        Assert.Equal("ostree-commit", (string?)inspect["manifest"]!["layers"]!.AsArray()[^1]!["annotations"]!["org.treechunk.components"]);
        var labels = inspect["config"]!["config"]!["Labels"]!;
        Assert.Equal((string?)inspect["config"]!["rootfs"]!["diff_ids"]!.AsArray()[^1], (string?)labels["ostree.final-diffid"]);
        var imported = JsonNode.Parse(TreechunkCli.Check("oci", "import-ostree", tmp["rechunked"], "--repo", tmp["fresh"], "--json"))!;
        Assert.Equal(commit, (string?)imported["commit"]);
        Assert.True((bool)imported["exact"]!);
    }

    [Fact]
    public void A_metadata_only_change_touches_only_the_commit_layer()
    {
        using var tmp = new TempDir("encap-meta");
        MakeTree(tmp["tree"]);
        Proc.Check(Ostree, "--repo=" + tmp["repo"], "init", "--mode=archive");
        OstreeCommit(tmp["repo"], tmp["tree"], "v1", "--add-metadata-string=version=1");
        OstreeCommit(tmp["repo"], tmp["tree"], "v2", "--add-metadata-string=version=2");
        var a = JsonNode.Parse(TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "v1", $"oci:{tmp["image"]}:v1", "--json"))!["layers"]!.AsArray();
        var b = JsonNode.Parse(TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "v2", $"oci:{tmp["image"]}:v2", "--json"))!["layers"]!.AsArray();
        Assert.Equal(a.Count, b.Count);
        Assert.Equal(a.Take(a.Count - 1).Select(l => (string?)l!["digest"]), b.Take(b.Count - 1).Select(l => (string?)l!["digest"]));
        Assert.NotEqual((string?)a[^1]!["digest"], (string?)b[^1]!["digest"]);
    }

    [Fact]
    public void Debian_tree_round_trips()
    {
        using var tmp = new TempDir("encap-deb");
        Proc.Check(Ostree, "--repo=" + tmp["repo"], "init", "--mode=archive");
        // ostree cannot hold device nodes (and refuses them even when skip-listed): commit a copy without them.
        Proc.Sh($"cp -a '{Fixtures.DebianTree}' '{tmp["tree"]}' && find '{tmp["tree"]}/dev' \\( -type c -o -type b -o -type p \\) -delete");
        var commit = OstreeCommit(tmp["repo"], tmp["tree"], "debian/bookworm");
        TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "debian/bookworm", $"oci:{tmp["image"]}", "--compression", "zstd");
        TreechunkCli.Check("oci", "verify-layers", tmp["image"]);
        var imported = JsonNode.Parse(TreechunkCli.Check("oci", "import-ostree", tmp["image"], "--repo", tmp["fresh"], "--json"))!;
        Assert.Equal(commit, (string?)imported["commit"]);
        Proc.Check(Ostree, "--repo=" + tmp["fresh"], "fsck");
    }

    [Fact]
    public void A_foreign_image_becomes_a_new_commit_that_checks_out_as_the_tree()
    {
        using var tmp = new TempDir("import-foreign");
        MakeTree(tmp["tree"]);
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", tmp["tree"], "--output", $"oci:{tmp["image"]}");
        var imported = JsonNode.Parse(TreechunkCli.Check("oci", "import-ostree", tmp["image"], "--repo", tmp["repo"], "--ref", "foreign", "--json"))!;
        Assert.False((bool)imported["exact"]!);
        Proc.Check(Ostree, "--repo=" + tmp["repo"], "fsck");
        Proc.Check(Ostree, "--repo=" + tmp["repo"], "checkout", "foreign", tmp["out"]);
        // An archive checkout copies files: hardlinks come back as equal copies.
        TreeSnapshot.AssertEqual(TreeSnapshot.Of(tmp["tree"], hardlinksAsCopies: true), TreeSnapshot.Of(tmp["out"], hardlinksAsCopies: true));
    }

    [Fact]
    public void Layers_that_do_not_match_the_embedded_commit_are_refused()
    {
        using var tmp = new TempDir("import-tampered");
        MakeTree(tmp["tree"]);
        Proc.Check(Ostree, "--repo=" + tmp["repo"], "init", "--mode=archive");
        var commit = OstreeCommit(tmp["repo"], tmp["tree"], "t");
        TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "t", $"oci:{tmp["image"]}", "--compression", "none");

        // Replace one layer by a copy with one file's content changed; digests, diff_ids, labels
        // and annotations stay consistent, so only the commit check can notice.
        var layers = JsonNode.Parse(TreechunkCli.Check("oci", "layers", tmp["image"], "--json"))!.AsArray();
        int victim = layers.Select((l, i) => (l, i)).First(x => Proc.Check("tar", "-tf", Blob(tmp["image"], (string)x.l!["digest"]!)).Split('\n').Contains("etc/app.conf")).i;
        var file = Blob(tmp["image"], (string)layers[victim]!["digest"]!);
        Proc.Check("python3", "-c", $"""
            import tarfile, io
            src = tarfile.open('{file}'); members = [(m, src.extractfile(m).read() if m.isfile() else None) for m in src.getmembers()]
            with tarfile.open('{tmp["new.tar"]}', 'w', format=tarfile.PAX_FORMAT) as out:
                for m, data in members:
                    if m.name == 'etc/app.conf': data = b'tampered\n'; m.size = len(data)
                    out.addfile(m, io.BytesIO(data) if data is not None else None)
            """);
        Proc.Check("cp", "-a", tmp["image"], tmp["bad"]);
        ReplaceUncompressedLayer(tmp["bad"], victim, File.ReadAllBytes(tmp["new.tar"]));
        TreechunkCli.Check("oci", "verify-layers", tmp["bad"]);
        var line = TreechunkCli.Fails(1, "oci", "import-ostree", tmp["bad"], "--repo", tmp["fresh"], "--ref", "x");
        Assert.Contains("do not match", line);
        Assert.False(File.Exists(Path.Join(tmp["fresh"], "refs/heads/x")));
    }

    private static string Blob(string layout, string digest) => Path.Join(layout, "blobs/sha256", digest[7..]);

    private static string Put(string layout, byte[] data)
    {
        var digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data));
        File.WriteAllBytes(Blob(layout, digest), data);
        return digest;
    }

    /// <summary>Swaps layer <paramref name="index"/> of an uncompressed image for new bytes, fixing manifest, config and index.</summary>
    private static void ReplaceUncompressedLayer(string layout, int index, byte[] tar)
    {
        var indexJson = JsonNode.Parse(File.ReadAllText(Path.Join(layout, "index.json")))!;
        var manifest = JsonNode.Parse(File.ReadAllBytes(Blob(layout, (string)indexJson["manifests"]![0]!["digest"]!)))!;
        var config = JsonNode.Parse(File.ReadAllBytes(Blob(layout, (string)manifest["config"]!["digest"]!)))!;
        var digest = Put(layout, tar);
        manifest["layers"]![index]!["digest"] = digest;
        manifest["layers"]![index]!["size"] = tar.Length;
        config["rootfs"]!["diff_ids"]![index] = digest;
        var configBytes = System.Text.Encoding.UTF8.GetBytes(config.ToJsonString());
        manifest["config"]!["digest"] = Put(layout, configBytes);
        manifest["config"]!["size"] = configBytes.Length;
        var manifestBytes = System.Text.Encoding.UTF8.GetBytes(manifest.ToJsonString());
        indexJson["manifests"]![0]!["digest"] = Put(layout, manifestBytes);
        indexJson["manifests"]![0]!["size"] = manifestBytes.Length;
        File.WriteAllText(Path.Join(layout, "index.json"), indexJson.ToJsonString());
    }
}
