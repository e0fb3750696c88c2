using System.Text.Json.Nodes;
using Treechunk.Chunking;
using Treechunk.Packages;
using Treechunk.Tests.Support;
using Treechunk.Trees;

namespace Treechunk.Tests.CommandLine;

/// <summary>A real Debian tree made by mmdebstrap: dpkg components, and an image equal to the tree.</summary>
public sealed class DebianImageFixture : IDisposable
{
    public TempDir Dir { get; } = new("debian");
    public string Tree { get; } = Fixtures.DebianTree;
    public string Layout => Dir["image"];
    public JsonNode Build { get; }

    public DebianImageFixture()
    {
        Build = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", Tree, "--output", $"oci:{Layout}:bookworm", "--json"))!;
    }

    public void Dispose() => Dir.Dispose();
}

public class DebianTreeTests(DebianImageFixture fx) : IClassFixture<DebianImageFixture>
{
    private static string Triplet => Treechunk.Oci.Platforms.HostArchitecture switch
    {
        "arm64" => "aarch64-linux-gnu",
        _ => "x86_64-linux-gnu",
    };

    [Fact]
    public void Dpkg_database_drives_package_chunking()
    {
        Assert.Equal("package", (string?)fx.Build["algorithm"]);
        Assert.Equal("dpkg", (string?)fx.Build["package_database"]);
        Assert.InRange(fx.Build["layers"]!.AsArray().Count, 10, 64);
    }

    [Fact]
    public void Openssl_binary_and_libssl_share_the_openssl_component_and_layer()
    {
        using var tree = DirectoryTree.Open(fx.Tree);
        var map = ComponentAssigner.Assign(tree, ChunkAlgorithm.Package, 16 << 20, PackageDatabases.Detect(tree));
        Assert.Equal("openssl", map.ComponentOfPath["usr/bin/openssl"]);
        Assert.Equal("openssl", map.ComponentOfPath[$"usr/lib/{Triplet}/libssl.so.3"]);
        Assert.Equal("state", map.ComponentOfPath["var/lib/dpkg/status"]);

        var layer = fx.Build["layers"]!.AsArray().Single(l => l!["components"]!.AsArray().Any(c => (string?)c == "openssl"))!;
        var blob = Path.Join(fx.Layout, "blobs/sha256", ((string)layer["digest"]!)[7..]);
        var names = Proc.Check("tar", "-tzf", blob).Split('\n');
        Assert.Contains("usr/bin/openssl", names);
        Assert.Contains($"usr/lib/{Triplet}/libssl.so.3", names);
    }

    [Fact]
    public void Umoci_unpack_equals_the_debian_tree()
    {
        using var tmp = new TempDir("deb-umoci");
        Proc.Check(Tools.Require("umoci"), "unpack", "--image", $"{fx.Layout}:bookworm", tmp["bundle"]);
        TreeSnapshot.AssertEqual(TreeSnapshot.Of(fx.Tree), TreeSnapshot.Of(tmp["bundle/rootfs"]));
    }

    [Fact]
    public void Treechunk_extract_equals_the_debian_tree_and_skopeo_reads_it()
    {
        using var tmp = new TempDir("deb-extract");
        TreechunkCli.Check("oci", "extract", $"oci:{fx.Layout}:bookworm", tmp["out"]);
        TreeSnapshot.AssertEqual(TreeSnapshot.Of(fx.Tree), TreeSnapshot.Of(tmp["out"]));
        Assert.True(Peers.SkopeoAgrees($"oci:{fx.Layout}:bookworm")["Layers"]!.AsArray().Count > 1);
        TreechunkCli.Check("oci", "verify-layers", fx.Layout);
    }
}
