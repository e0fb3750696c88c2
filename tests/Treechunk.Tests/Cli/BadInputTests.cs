using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>Every kind of bad input gets one clear line on stderr and a non-zero exit, never a stack trace.</summary>
public class BadInputTests : IClassFixture<BadInputTests.SmallImage>
{
    public sealed class SmallImage : IDisposable
    {
        public TempDir Dir { get; } = new("bad");
        public string Rootfs => Dir["rootfs"];
        public string Layout => Dir["image"];

        public SmallImage()
        {
            Directory.CreateDirectory(Path.Join(Rootfs, "etc"));
            File.WriteAllText(Path.Join(Rootfs, "etc/hostname"), "box\n");
            File.WriteAllText(Path.Join(Rootfs, "etc/big"), new string('z', 300_000));
            TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", Rootfs, "--output", $"oci:{Layout}", "--chunk-size", "8K");
        }

        public void Dispose() => Dir.Dispose();
    }

    private readonly SmallImage _img;
    public BadInputTests(SmallImage img) => _img = img;

    private string Copy(TempDir tmp)
    {
        Proc.Check("cp", "-a", _img.Layout, tmp["copy"]);
        return tmp["copy"];
    }

    [Fact]
    public void Missing_rootfs()
    {
        using var tmp = new TempDir();
        Assert.Contains("no-such-dir", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", tmp["no-such-dir"], "--output", $"oci:{tmp["o"]}"));
        Assert.False(Directory.Exists(tmp["o"]));
    }

    [Fact]
    public void Rootfs_that_is_a_file()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp["file"], "x");
        Assert.Contains("not a directory", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", tmp["file"], "--output", $"oci:{tmp["o"]}"));
    }

    [Fact]
    public void Both_or_neither_source()
    {
        using var tmp = new TempDir();
        Assert.Contains("exactly one", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--output", $"oci:{tmp["o"]}"));
        Assert.Contains("exactly one", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", _img.Rootfs, "--from", _img.Layout, "--output", $"oci:{tmp["o"]}"));
    }

    [Fact]
    public void Output_that_exists_but_is_not_a_layout_is_refused_unless_forced()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["out"]);
        File.WriteAllText(tmp["out/precious.txt"], "keep me");
        Assert.Contains("--force", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", _img.Rootfs, "--output", $"oci:{tmp["out"]}"));
        Assert.True(File.Exists(tmp["out/precious.txt"]));
        File.WriteAllText(tmp["file.tar"], "not a tar");
        Assert.Contains("--force", TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", _img.Rootfs, "--output", $"oci-archive:{tmp["file.tar"]}"));
        Assert.Equal("not a tar", File.ReadAllText(tmp["file.tar"]));
        TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", _img.Rootfs, "--output", $"oci:{tmp["out"]}", "--force");
        Assert.False(File.Exists(tmp["out/precious.txt"]));
        TreechunkCli.Check("oci", "verify-layers", tmp["out"]);
    }

    [Theory]
    [InlineData("--chunk-algorithm", "magic", "unknown chunk algorithm")]
    [InlineData("--compression", "lz4", "unknown compression")]
    [InlineData("--compression", "zstd:chunky", "zstd:chunked")]
    [InlineData("--chunk-size", "ten", "invalid --chunk-size")]
    [InlineData("--chunk-size", "0", "invalid --chunk-size")]
    [InlineData("--compression-level", "42", "out of range")]
    [InlineData("--max-layers", "0", "at least 1")]
    [InlineData("--oci-tag", "bad tag!", "invalid tag")]
    [InlineData("--label", "novalue", "not key=value")]
    public void Bad_options(string option, string value, string message)
    {
        using var tmp = new TempDir();
        Assert.Contains(message, TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--rootfs", _img.Rootfs, "--output", $"oci:{tmp["o"]}", option, value));
        Assert.False(File.Exists(Path.Join(tmp["o"], "index.json")));
    }

    [Fact]
    public void Unknown_option_or_command_is_a_usage_error()
    {
        TreechunkCli.Fails(2, "compose", "build-chunked-oci", "--no-such-flag");
        TreechunkCli.Fails(2, "frobnicate");
    }

    [Fact]
    public void Missing_index_json_is_not_a_complete_layout()
    {
        using var tmp = new TempDir();
        var copy = Copy(tmp);
        File.Delete(Path.Join(copy, "index.json"));
        foreach (var cmd in new[] { "inspect", "verify-layers", "layers" })
            Assert.Contains("index.json", TreechunkCli.Fails(2, "oci", cmd, copy));
        Assert.Contains("index.json", TreechunkCli.Fails(2, "oci", "extract", copy, tmp["x"]));
    }

    [Fact]
    public void Garbage_index_json_is_reported()
    {
        using var tmp = new TempDir();
        var copy = Copy(tmp);
        File.WriteAllText(Path.Join(copy, "index.json"), "{ not json");
        Assert.Contains("not valid JSON", TreechunkCli.Fails(2, "oci", "inspect", copy));
    }

    [Fact]
    public void Not_a_layout_at_all()
    {
        using var tmp = new TempDir();
        Assert.Contains("no such OCI layout", TreechunkCli.Fails(2, "oci", "inspect", tmp["nothing"]));
        Directory.CreateDirectory(tmp["empty"]);
        Assert.Contains("not an OCI image layout", TreechunkCli.Fails(2, "oci", "verify-layers", tmp["empty"]));
        File.WriteAllText(tmp["junk.tar"], "junk");
        Assert.Contains("junk.tar", TreechunkCli.Fails(2, "oci", "inspect", $"oci-archive:{tmp["junk.tar"]}"));
    }

    [Fact]
    public void Corrupt_manifest_blob_is_named()
    {
        using var tmp = new TempDir();
        var copy = Copy(tmp);
        var index = JsonNode.Parse(File.ReadAllText(Path.Join(copy, "index.json")))!;
        var manifest = (string)index["manifests"]![0]!["digest"]!;
        File.AppendAllText(Path.Join(copy, "blobs/sha256", manifest[7..]), " ");
        Assert.Contains(manifest, TreechunkCli.Fails(1, "oci", "inspect", copy));
        Assert.Contains(manifest, TreechunkCli.Fails(1, "oci", "extract", copy, tmp["x"]));
    }

    [Fact]
    public void Truncated_and_missing_layers_fail_verify_and_extract()
    {
        using var tmp = new TempDir();
        var copy = Copy(tmp);
        var layers = JsonNode.Parse(TreechunkCli.Check("oci", "layers", copy, "--json"))!.AsArray();
        var first = (string)layers[0]!["digest"]!;
        var path = Path.Join(copy, "blobs/sha256", first[7..]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        Assert.Contains(first, TreechunkCli.Fails(1, "oci", "verify-layers", copy));
        Assert.Contains(first, TreechunkCli.Fails(null, "oci", "extract", copy, tmp["x"]));
        Assert.False(Directory.Exists(tmp["x"]), "a failed extraction must not leave a rootfs behind");
        Assert.Empty(Directory.EnumerateFileSystemEntries(tmp.Path).Where(p => Path.GetFileName(p).StartsWith(".x.")));
        File.Delete(path);
        Assert.Contains("missing", TreechunkCli.Fails(1, "oci", "verify-layers", copy));
    }

    [Fact]
    public void Verify_content_checks_the_manifest_digest()
    {
        var digest = (string)JsonNode.Parse(TreechunkCli.Check("oci", "inspect", _img.Layout, "--json"))!["manifest_digest"]!;
        Assert.Contains("ok", TreechunkCli.Check("oci", "verify-content", "--expected-digest", digest, _img.Layout));
        var wrong = "sha256:" + new string('0', 64);
        Assert.Contains(wrong, TreechunkCli.Fails(1, "oci", "verify-content", "--expected-digest", wrong, _img.Layout));
        Assert.Contains("invalid", TreechunkCli.Fails(2, "oci", "verify-content", "--expected-digest", "md5:abc", _img.Layout));
    }

    [Fact]
    public void Unknown_tag_lists_the_known_ones()
    {
        Assert.Contains("latest", TreechunkCli.Fails(2, "oci", "inspect", $"oci:{_img.Layout}:nope"));
    }

    [Fact]
    public void Extract_into_a_non_empty_directory_is_refused()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(tmp["busy"]);
        File.WriteAllText(tmp["busy/file"], "x");
        TreechunkCli.Fails(2, "oci", "extract", _img.Layout, tmp["busy"]);
    }
}
