using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Treechunk.Tests.Support;

namespace Treechunk.Tests.Runtimes;

/// <summary>
/// oci save: the docker-archive (which is also an OCI layout) and the oci-archive, read by
/// skopeo 1.9's docker-archive: and oci-archive: transports; the same image saved twice gives
/// the same bytes; a failed save leaves no file behind.
/// </summary>
public class SaveTests(RuntimeImages fx) : IClassFixture<RuntimeImages>
{
    private static JsonNode Save(params string[] args)
    {
        var r = TreechunkCli.Run(["oci", "save", .. args, "--json"]);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonNode.Parse(r.Stdout)!;
    }

    private static JsonNode Skopeo(params string[] args) => JsonNode.Parse(Proc.Check(Tools.Require("skopeo"), args))!;

    private static Dictionary<string, string> Labels(JsonNode? labels) =>
        labels is JsonObject o ? o.ToDictionary(kv => kv.Key, kv => (string)kv.Value!) : [];

    private static string Sha256(string file)
    {
        using var f = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(f));
    }

    private static string Member(string archive, string name) => Proc.Check("tar", "-xOf", archive, name);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Docker_archive_is_read_by_skopeo_with_our_diff_ids_and_labels_and_is_an_oci_layout_too(bool zstd)
    {
        var image = zstd ? fx.Zstd : fx.Gzip;
        using var tmp = new TempDir("save-docker");
        var file = tmp["os.tar"];
        var json = Save(image.Ref, "--format", "docker-archive", file);
        Assert.Equal("docker-archive", (string)json["format"]!);
        Assert.Equal(file, (string)json["file"]!);
        Assert.Equal(zstd ? "localhost/os-zstd:v1" : "localhost/os:v1", (string)json["name"]!);
        Assert.Equal(image.ManifestDigest, (string)json["manifest_digest"]!);
        Assert.Equal(image.ConfigDigest, (string)json["config_digest"]!);
        Assert.Equal(zstd ? image.LayerDigests.Count : 0, (int)json["recompressed_layers"]!);
        Assert.Equal(new FileInfo(file).Length, (long)json["bytes"]!);

        // skopeo's docker-archive: names layers by diff_id, as docker save's format does.
        var docker = Skopeo("inspect", $"docker-archive:{file}");
        Assert.Equal(image.DiffIds, docker["Layers"]!.AsArray().Select(l => (string)l!));
        Assert.Equal(RuntimeImages.ExpectedLabels, Labels(docker["Labels"]));
        var config = Skopeo("inspect", "--config", $"docker-archive:{file}");
        Assert.Equal(image.DiffIds, config["rootfs"]!["diff_ids"]!.AsArray().Select(d => (string)d!));
        // Every layer the archive holds decompresses (skopeo's own gzip) to its diff_id.
        Peers.SkopeoDecompressesToTheDiffIds($"docker-archive:{file}", tmp["decompressed"]);

        // The same file read as an OCI layout (oci-archive: is a tar of one): the archive's manifest,
        // the image's own unless zstd layers were recompressed to gzip.
        var oci = Skopeo("inspect", $"oci-archive:{file}");
        var archiveManifest = (string)json["archive_manifest_digest"]!;
        Assert.Equal(archiveManifest, (string)oci["Digest"]!);
        Assert.Equal(zstd, archiveManifest != image.ManifestDigest);
        var raw = Proc.Check(Tools.Require("skopeo"), "inspect", "--raw", $"oci-archive:{file}");
        Assert.Equal(archiveManifest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(raw))));
        Assert.All(JsonNode.Parse(raw)!["layers"]!.AsArray(), l => Assert.Equal("application/vnd.oci.image.layer.v1.tar+gzip", (string)l!["mediaType"]!));
        Assert.Equal(RuntimeImages.ExpectedLabels, Labels(oci["Labels"]));

        // Both views name the image: docker's RepoTags and the index's annotations.
        var manifestJson = JsonNode.Parse(Member(file, "manifest.json"))!.AsArray().Single()!;
        Assert.Equal([(string)json["name"]!], manifestJson["RepoTags"]!.AsArray().Select(t => (string)t!));
        Assert.Equal($"blobs/sha256/{image.ImageId}", (string)manifestJson["Config"]!);
        var index = JsonNode.Parse(Member(file, "index.json"))!;
        Assert.Equal((string)json["name"]!, (string)index["manifests"]![0]!["annotations"]!["io.containerd.image.name"]!);
    }

    [Fact]
    public void Oci_archive_keeps_the_manifest_digest_and_skopeo_agrees()
    {
        using var tmp = new TempDir("save-oci");
        var file = tmp["os-oci.tar"];
        var json = Save(fx.Zstd.Ref, "--format", "oci-archive", file);
        Assert.Equal("oci-archive", (string)json["format"]!);
        Assert.Equal(fx.Zstd.ManifestDigest, (string)json["manifest_digest"]!);
        Assert.Equal(0, (int)json["recompressed_layers"]!);
        var skopeo = Skopeo("inspect", $"oci-archive:{file}");
        Assert.Equal(fx.Zstd.ManifestDigest, (string)skopeo["Digest"]!);
        Assert.Equal(fx.Zstd.LayerDigests, skopeo["Layers"]!.AsArray().Select(l => (string)l!));
        Peers.SkopeoAgrees($"oci-archive:{file}");
        // Named by the reference's tag.
        Assert.Equal("v1", (string)JsonNode.Parse(Member(file, "index.json"))!["manifests"]![0]!["annotations"]!["org.opencontainers.image.ref.name"]!);
    }

    [Theory]
    [InlineData("docker-archive", false)]
    [InlineData("docker-archive", true)]
    [InlineData("oci-archive", false)]
    public void Saving_the_same_image_twice_gives_the_same_bytes(string format, bool zstd)
    {
        var image = zstd ? fx.Zstd : fx.Gzip;
        using var tmp = new TempDir("save-twice");
        TreechunkCli.Check("oci", "save", image.Ref, "--format", format, tmp["a.tar"]);
        TreechunkCli.Check("oci", "save", image.Ref, "--format", format, tmp["b.tar"]);
        Assert.Equal(Sha256(tmp["a.tar"]), Sha256(tmp["b.tar"]));
        // Replacing an existing file gives the same bytes again.
        TreechunkCli.Check("oci", "save", image.Ref, "--format", format, tmp["a.tar"]);
        Assert.Equal(Sha256(tmp["b.tar"]), Sha256(tmp["a.tar"]));
    }

    [Theory]
    [InlineData("docker-archive")]
    [InlineData("oci-archive")]
    public void A_save_that_fails_midway_leaves_the_old_file_and_no_partial_one(string format)
    {
        using var tmp = new TempDir("save-fail");
        var (corrupt, blob) = fx.CorruptCopy(tmp["layout"]);
        Directory.CreateDirectory(tmp["out"]);
        File.WriteAllText(tmp["out/os.tar"], "the previous file\n");

        var r = TreechunkCli.Run("oci", "save", corrupt, "--format", format, tmp["out/os.tar"]);
        Assert.NotEqual(0, r.ExitCode);
        var line = Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("treechunk: error: ", line);
        Assert.Contains(blob, line);
        Assert.Equal("the previous file\n", File.ReadAllText(tmp["out/os.tar"]));
        Assert.Equal([tmp["out/os.tar"]], Directory.GetFileSystemEntries(tmp["out"]));
    }
}
