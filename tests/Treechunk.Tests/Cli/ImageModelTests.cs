using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.CommandLine;

/// <summary>A small chunked image in a layout, and the same image as an oci-archive, built once.</summary>
public sealed class SmallLayoutFixture : IDisposable
{
    public TempDir Dir { get; } = new("model");
    public string Layout => Dir["image"];
    public string Archive => Dir["image.tar"];
    public string Digest { get; }

    public SmallLayoutFixture()
    {
        var rootfs = Dir["rootfs"];
        Directory.CreateDirectory(Path.Join(rootfs, "etc"));
        Directory.CreateDirectory(Path.Join(rootfs, "usr/share/data"));
        File.WriteAllText(Path.Join(rootfs, "etc/hostname"), "box\n");
        for (int i = 0; i < 6; i++)
            File.WriteAllText(Path.Join(rootfs, $"usr/share/data/file{i}"), new string((char)('a' + i), 20_000 + i));
        var build = JsonNode.Parse(TreechunkCli.Check("compose", "build-chunked-oci", "--rootfs", rootfs, "--output", $"oci:{Layout}:v1",
            "--chunk-size", "16K", "--json"))!;
        Digest = (string)build["manifest_digest"]!;
        TreechunkCli.Check("oci", "copy", $"oci:{Layout}:v1", $"oci-archive:{Archive}");
    }

    public void Dispose() => Dir.Dispose();
}

public class ImageModelTests(SmallLayoutFixture fx) : IClassFixture<SmallLayoutFixture>
{
    private static string Skopeo => Tools.Require("skopeo");

    private static string SkopeoDigest(string reference) => (string)JsonNode.Parse(Proc.Check(Skopeo, "inspect", reference))!["Digest"]!;

    private static string Sha256(byte[] data) => "sha256:" + Convert.ToHexStringLower(SHA256.HashData(data));

    [Fact]
    public void Copy_layout_to_archive_and_back_keeps_the_manifest_digest_and_skopeo_reads_both()
    {
        using var tmp = new TempDir("copy");
        // The fixture's archive was made by oci copy from the layout; skopeo reads it with the same digest.
        Assert.Equal(fx.Digest, SkopeoDigest($"oci-archive:{fx.Archive}:v1"));
        var back = JsonNode.Parse(TreechunkCli.Check("oci", "copy", $"oci-archive:{fx.Archive}:v1", $"oci:{tmp["back"]}", "--json"))!;
        Assert.Equal(fx.Digest, (string)back["digest"]!);
        Assert.Equal("v1", (string)back["tag"]!);
        Assert.Equal(fx.Digest, SkopeoDigest($"oci:{tmp["back"]}:v1"));
        var layers = JsonNode.Parse(TreechunkCli.Check("oci", "layers", $"oci:{fx.Layout}:v1", "--json"))!.AsArray();
        Assert.True(layers.Count > 2, "expected a chunked image");
        Assert.Equal(layers.Count + 1, (int)back["blobs_copied"]!); // layers and config
        TreechunkCli.Check("oci", "verify-layers", $"oci:{tmp["back"]}:v1");
        // The destination's own tag wins.
        TreechunkCli.Check("oci", "copy", $"oci:{fx.Layout}:v1", $"oci-archive:{tmp["other.tar"]}:renamed");
        Assert.Equal(fx.Digest, SkopeoDigest($"oci-archive:{tmp["other.tar"]}:renamed"));
    }

    [Fact]
    public void Copy_into_a_layout_that_has_the_blobs_writes_none_again()
    {
        using var tmp = new TempDir("copy-again");
        var first = JsonNode.Parse(TreechunkCli.Check("oci", "copy", $"oci:{fx.Layout}:v1", $"oci:{tmp["dest"]}:v1", "--json"))!;
        Assert.True((int)first["blobs_copied"]! > 2);
        var blobs = Directory.GetFiles(tmp["dest/blobs/sha256"]).Order(StringComparer.Ordinal).ToList();
        var before = blobs.Select(b => (b, File.GetLastWriteTimeUtc(b), new FileInfo(b).Length)).ToList();
        Thread.Sleep(20);
        var second = JsonNode.Parse(TreechunkCli.Check("oci", "copy", $"oci:{fx.Layout}:v1", $"oci:{tmp["dest"]}:again", "--json"))!;
        Assert.Equal(0, (int)second["blobs_copied"]!);
        Assert.Equal((int)first["blobs_copied"]!, (int)second["blobs_skipped"]!);
        Assert.Equal(before, blobs.Select(b => (b, File.GetLastWriteTimeUtc(b), new FileInfo(b).Length)).ToList());
        Assert.Equal(blobs, Directory.GetFiles(tmp["dest/blobs/sha256"]).Order(StringComparer.Ordinal).ToList());
        Assert.Equal(fx.Digest, SkopeoDigest($"oci:{tmp["dest"]}:again"));
    }

    [Fact]
    public void Inspecting_an_archive_makes_no_temp_copy()
    {
        // TMPDIR is a regular file: nothing can be created under it, so any temp copy would fail.
        using var tmp = new TempDir("no-temp");
        File.WriteAllText(tmp["not-a-dir"], "");
        var env = new Dictionary<string, string> { ["TMPDIR"] = tmp["not-a-dir"] };
        var inspect = TreechunkCli.RunWithEnv(env, "oci", "inspect", $"oci-archive:{fx.Archive}", "--json");
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal(fx.Digest, (string)JsonNode.Parse(inspect.Stdout)!["manifest_digest"]!);
        var layers = TreechunkCli.RunWithEnv(env, "oci", "layers", $"oci-archive:{fx.Archive}", "--json");
        Assert.True(layers.ExitCode == 0, layers.ToString());
        var verify = TreechunkCli.RunWithEnv(env, "oci", "verify-layers", $"oci-archive:{fx.Archive}");
        Assert.True(verify.ExitCode == 0, verify.ToString());
        Assert.Equal("", File.ReadAllText(tmp["not-a-dir"]));
    }

    [Fact]
    public void Inspect_raw_prints_the_stored_bytes()
    {
        var raw = Proc.Run("bash", ["-c", $"dotnet '{Path.Join(AppContext.BaseDirectory, "treechunk.dll")}' oci inspect --raw oci-archive:{fx.Archive}:v1 | sha256sum"]);
        Assert.Equal(fx.Digest[7..], raw.Stdout.Split(' ')[0]);
        var config = Encoding.UTF8.GetBytes(TreechunkCli.Check("oci", "inspect", "--raw", "--config", $"oci:{fx.Layout}:v1"));
        var manifest = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", "--raw", $"oci:{fx.Layout}:v1"))!;
        Assert.Equal((string)manifest["config"]!["digest"]!, Sha256(config));
    }

    [Fact]
    public void Digest_references_name_a_manifest()
    {
        var byDigest = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci:{fx.Layout}@{fx.Digest}", "--json"))!;
        Assert.Equal(fx.Digest, (string)byDigest["manifest_digest"]!);
        var fromArchive = JsonNode.Parse(TreechunkCli.Check("oci", "inspect", $"oci-archive:{fx.Archive}@{fx.Digest}", "--json"))!;
        Assert.Equal(fx.Digest, (string)fromArchive["manifest_digest"]!);
        var missing = "sha256:" + new string('0', 64);
        Assert.Contains("no manifest with digest", TreechunkCli.Fails(2, "oci", "inspect", $"oci:{fx.Layout}@{missing}"));
        Assert.Contains("invalid", TreechunkCli.Fails(2, "oci", "inspect", $"oci:{fx.Layout}@sha256:xyz"));
        using var tmp = new TempDir("digest-dest");
        Assert.Contains("names a digest", TreechunkCli.Fails(2, "oci", "copy", $"oci:{fx.Layout}:v1", $"oci:{tmp["d"]}@{fx.Digest}"));
        Assert.False(Directory.Exists(tmp["d"]));
    }

    [Fact]
    public void Json_output_keeps_plus_signs()
    {
        var text = TreechunkCli.Check("oci", "layers", $"oci:{fx.Layout}:v1", "--json");
        Assert.Contains("tar+gzip", text);
        Assert.DoesNotContain("\\u002B", text);
    }

    [Fact]
    public void Verbose_tells_the_steps_of_every_command()
    {
        foreach (var args in new[] { new[] { "oci", "layers", $"oci:{fx.Layout}:v1" }, ["oci", "inspect", $"oci-archive:{fx.Archive}"], ["oci", "chunk", "list", fx.Layout] })
        {
            var quiet = TreechunkCli.Run(args);
            Assert.Equal("", quiet.Stderr);
            var verbose = TreechunkCli.Run([.. args, "--verbose"]);
            Assert.Equal(0, verbose.ExitCode);
            Assert.Contains("opening ", verbose.Stderr);
            Assert.Contains(fx.Digest, verbose.Stderr);
            Assert.Equal(quiet.Stdout, verbose.Stdout);
        }
        using var tmp = new TempDir("verbose-ostree");
        TreechunkCli.Check("ostree", "init", "--repo", tmp["repo"], "--mode", "archive");
        Assert.Contains("0 refs", TreechunkCli.Run("ostree", "refs", "--repo", tmp["repo"], "-v").Stderr);
    }

    [Fact]
    public void Copy_failures_keep_nothing()
    {
        using var tmp = new TempDir("copy-bad");
        Proc.Check("cp", "-a", fx.Layout, tmp["src"]);
        var layers = JsonNode.Parse(TreechunkCli.Check("oci", "layers", tmp["src"], "--json"))!.AsArray();
        var victim = (string)layers[0]!["digest"]!;
        var path = Path.Join(tmp["src"], "blobs/sha256", victim[7..]);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x40;
        File.WriteAllBytes(path, bytes);
        Assert.Contains(victim, TreechunkCli.Fails(1, "oci", "copy", $"oci:{tmp["src"]}:v1", $"oci:{tmp["dest"]}"));
        Assert.False(File.Exists(Path.Join(tmp["dest"], "blobs/sha256", victim[7..])));
        Assert.False(File.Exists(Path.Join(tmp["dest"], "index.json")));
        Assert.Empty(Directory.GetFiles(tmp["dest/blobs/sha256"], ".tmp-*"));
        Assert.Contains(victim, TreechunkCli.Fails(1, "oci", "copy", $"oci:{tmp["src"]}:v1", $"oci-archive:{tmp["dest.tar"]}"));
        Assert.False(File.Exists(tmp["dest.tar"]));
        Assert.Empty(Directory.GetFileSystemEntries(tmp.Path, ".treechunk-*"));

        Assert.Contains("no such OCI layout", TreechunkCli.Fails(2, "oci", "copy", $"oci:{tmp["absent"]}", $"oci:{tmp["x"]}"));
        Assert.Contains("not an index", TreechunkCli.Fails(2, "oci", "copy", "--platform", "linux/arm64", $"oci:{fx.Layout}:v1", $"oci:{tmp["y"]}"));
        // A registry nobody listens on is the environment's fault (exit 3), and nothing is left behind.
        Assert.Contains("cannot reach registry 127.0.0.1:1", TreechunkCli.Fails(3, "oci", "copy", $"oci:{fx.Layout}:v1", "docker://127.0.0.1:1/x:y"));
    }
}
