using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Registry;

/// <summary>
/// Chunk directories (skopeo's dir: format): download from a real docker-registry fetching only
/// what is missing or wrong, upload and merge verified first, split, and skopeo reading and
/// writing the same directories.
/// </summary>
public class ChunkDirectoryTests(SmallLayoutFixture fx) : IClassFixture<SmallLayoutFixture>
{
    private static string Sha256File(string path)
    {
        using var f = File.OpenRead(path);
        return "sha256:" + Convert.ToHexStringLower(SHA256.HashData(f));
    }

    private static List<string> Blobs(string manifestPath)
    {
        var m = JsonNode.Parse(File.ReadAllText(manifestPath))!;
        return [(string)m["config"]!["digest"]!, .. m["layers"]!.AsArray().Select(l => (string)l!["digest"]!)];
    }

    private static string SkopeoDigest(string reference) =>
        (string)JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", reference))!["Digest"]!;

    [Fact]
    public void Download_fetches_only_missing_or_wrong_chunks_and_skopeo_reads_the_directory()
    {
        using var tmp = new TempDir("chunks-dl");
        using var registry = RegistryServer.StartAnonymous();
        var env = RegistryClientTests.Env(tmp);
        RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{fx.Layout}:v1", $"docker://{registry.Host}/os/img:v1");
        var chunks = tmp["chunks"];

        registry.ClearRequests();
        var first = RegistryClientTests.Json(env, "oci", "chunk", "download", "--insecure", "--registry", registry.Host, "--repository", "os/img", "--tag", "v1", "--chunks", chunks);
        Assert.Equal(fx.Digest, (string)first["digest"]!);
        Assert.Equal("Directory Transport Version: 1.1\n", File.ReadAllText(Path.Join(chunks, "version")));
        Assert.Equal(fx.Digest, Sha256File(Path.Join(chunks, "manifest.json")));
        var blobs = Blobs(Path.Join(chunks, "manifest.json"));
        foreach (var b in blobs) Assert.Equal(b, Sha256File(Path.Join(chunks, b[7..])));
        Assert.Equal(blobs.Count, blobs.Sum(registry.CountBlobGets));
        Assert.Equal(fx.Digest, SkopeoDigest($"dir:{chunks}"));

        // Two chunks gone, one corrupt: only those three travel, and the corrupt one is replaced.
        File.Delete(Path.Join(chunks, blobs[1][7..]));
        File.Delete(Path.Join(chunks, blobs[2][7..]));
        var corrupt = Path.Join(chunks, blobs[3][7..]);
        var bytes = File.ReadAllBytes(corrupt);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(corrupt, bytes);
        registry.ClearRequests();
        var second = RegistryClientTests.Json(env, "oci", "chunk", "download", "--insecure", $"docker://{registry.Host}/os/img:v1", "--chunks", chunks);
        Assert.Equal(3, (int)second["blobs_copied"]!);
        Assert.Equal(blobs.Count - 3, (int)second["blobs_skipped"]!);
        Assert.Equal(3, blobs.Sum(registry.CountBlobGets));
        Assert.Equal(1, registry.CountBlobGets(blobs[3]));
        Assert.Equal(blobs[3], Sha256File(corrupt));

        // Everything there: nothing but the manifest travels.
        registry.ClearRequests();
        var third = RegistryClientTests.Json(env, "oci", "chunk", "download", "--insecure", $"docker://{registry.Host}/os/img@{fx.Digest}", "--chunks", chunks);
        Assert.Equal(0, (int)third["blobs_copied"]!);
        Assert.Equal(0, blobs.Sum(registry.CountBlobGets));
        Assert.True(registry.Count("GET", "/manifests/") >= 1);
        TreechunkCli.Check("oci", "chunk", "verify", chunks);
        Assert.Equal(blobs.Count - 1, JsonNode.Parse(TreechunkCli.Check("oci", "chunk", "list", $"dir:{chunks}", "--json"))!.AsArray().Count);
    }

    [Fact]
    public void A_cut_chunk_download_resumes_with_Range()
    {
        using var tmp = new TempDir("chunks-cut");
        using var registry = RegistryServer.StartAnonymous();
        var image = TestImage.Write(tmp["image"], 300_000);
        Skopeo.Check("copy", "--dest-tls-verify=false", image.OciRef, $"docker://{registry.Host}/os/img:v1");
        using var proxy = new FaultProxy(registry);
        var cut = proxy.CutResponseBody("GET", $"/blobs/{image.LayerDigest}", afterBytes: 100_000);
        var env = RegistryClientTests.Env(tmp);
        var r = RegistryClientTests.Json(env, "oci", "chunk", "download", "--insecure", $"docker://{proxy.Host}/os/img:v1", "--chunks", tmp["chunks"]);
        Assert.Equal(1, cut.Fired);
        Assert.True((int)r["resumed"]! >= 1);
        Assert.StartsWith("bytes=100000-", proxy.Matching("GET", $"/blobs/{image.LayerDigest}").Last().Range);
        Assert.Equal(image.LayerSize, proxy.ResponseBodyBytes("GET", $"/blobs/{image.LayerDigest}"));
        Assert.Equal(image.LayerDigest, Sha256File(Path.Join(tmp["chunks"], image.LayerDigest[7..])));
    }

    [Fact]
    public void Upload_and_merge_take_what_skopeo_writes_and_skopeo_takes_what_split_writes()
    {
        using var tmp = new TempDir("chunks-interop");
        using var registry = RegistryServer.StartAnonymous();
        var env = RegistryClientTests.Env(tmp);

        // skopeo writes a chunk directory; we upload it and merge it.
        Skopeo.Check("copy", $"oci:{fx.Layout}:v1", $"dir:{tmp["theirs"]}");
        var up = RegistryClientTests.Json(env, "oci", "chunk", "upload", "--insecure", "--registry", registry.Host, "--repository", "os/theirs", "--tag", "v1", "--chunks", tmp["theirs"]);
        Assert.Equal(fx.Digest, (string)up["digest"]!);
        Assert.Equal(fx.Digest, SkopeoDigest($"docker://{registry.Host}/os/theirs:v1"));
        registry.ClearRequests();
        var again = RegistryClientTests.Json(env, "oci", "chunk", "upload", "--insecure", $"docker://{registry.Host}/os/theirs:v1", "--chunks", tmp["theirs"]);
        Assert.Equal(0, (int)again["blobs_copied"]!);
        Assert.Equal(0, registry.CountBlobUploads());
        var merged = JsonNode.Parse(TreechunkCli.Check("oci", "chunk", "merge", tmp["theirs"], $"oci:{tmp["merged"]}:m", "--json"))!;
        Assert.Equal(fx.Digest, (string)merged["digest"]!);
        Assert.Equal(fx.Digest, SkopeoDigest($"oci:{tmp["merged"]}:m"));

        // We split an image into a chunk directory; skopeo pushes it and we merge it again.
        TreechunkCli.Check("oci", "chunk", "split", $"oci-archive:{fx.Archive}", tmp["ours"]);
        Skopeo.Check("copy", "--dest-tls-verify=false", $"dir:{tmp["ours"]}", $"docker://{registry.Host}/os/ours:v1");
        Assert.Equal(fx.Digest, SkopeoDigest($"docker://{registry.Host}/os/ours:v1"));
        TreechunkCli.Check("oci", "chunk", "merge", tmp["ours"], $"oci-archive:{tmp["again.tar"]}");
        Assert.Equal(fx.Digest, SkopeoDigest($"oci-archive:{tmp["again.tar"]}"));
    }

    [Fact]
    public void Bad_chunk_directories_are_named_and_nothing_is_written()
    {
        using var tmp = new TempDir("chunks-bad");
        using var registry = RegistryServer.StartAnonymous();
        var env = RegistryClientTests.Env(tmp);
        TreechunkCli.Check("oci", "chunk", "split", $"oci:{fx.Layout}:v1", tmp["chunks"]);
        var blobs = Blobs(tmp["chunks/manifest.json"]);

        // A chunk whose bytes do not match its name.
        var victim = Path.Join(tmp["chunks"], blobs[^1][7..]);
        var original = File.ReadAllBytes(victim);
        var bytes = original.ToArray();
        bytes[10] ^= 0x01;
        File.WriteAllBytes(victim, bytes);
        Assert.Contains(blobs[^1], TreechunkCli.Fails(1, "oci", "chunk", "verify", tmp["chunks"]));
        Assert.Contains(blobs[^1], RegistryClientTests.Fails(env, 1, "oci", "chunk", "upload", "--insecure", $"docker://{registry.Host}/os/bad:v1", "--chunks", tmp["chunks"]));
        Assert.Equal(0, registry.CountBlobUploads());
        Assert.Contains(blobs[^1], TreechunkCli.Fails(1, "oci", "chunk", "merge", tmp["chunks"], $"oci:{tmp["out"]}"));
        Assert.False(Directory.Exists(tmp["out"]) && File.Exists(Path.Join(tmp["out"], "index.json")));

        // A missing chunk.
        File.Delete(victim);
        Assert.Contains(blobs[^1], TreechunkCli.Fails(1, "oci", "chunk", "merge", tmp["chunks"], $"oci-archive:{tmp["out.tar"]}"));
        Assert.False(File.Exists(tmp["out.tar"]));
        File.WriteAllBytes(victim, original);
        TreechunkCli.Check("oci", "chunk", "merge", tmp["chunks"], $"oci:{tmp["out"]}");

        // No manifest.json, a tag on a directory, a registry verb without a registry.
        Directory.CreateDirectory(tmp["empty"]);
        Assert.Contains("no manifest.json", TreechunkCli.Fails(2, "oci", "chunk", "merge", tmp["empty"], $"oci:{tmp["x"]}"));
        Assert.Contains("no manifest.json", TreechunkCli.Fails(2, "oci", "chunk", "list", $"dir:{tmp["empty"]}"));
        Assert.Contains("no such chunk directory", TreechunkCli.Fails(2, "oci", "chunk", "upload", $"docker://{registry.Host}/a/b:c", "--chunks", tmp["nowhere"]));
        Assert.Contains("works with a registry", TreechunkCli.Fails(2, "oci", "chunk", "download", $"oci:{fx.Layout}:v1", "--chunks", tmp["c2"]));
        Assert.Contains("--registry/--repository", TreechunkCli.Fails(2, "oci", "chunk", "download", "--chunks", tmp["c2"]));
        // A directory that is something else is not overwritten.
        Directory.CreateDirectory(tmp["other"]);
        File.WriteAllText(tmp["other/notes.txt"], "mine");
        Assert.Contains("not a chunk directory", TreechunkCli.Fails(2, "oci", "chunk", "split", $"oci:{fx.Layout}:v1", tmp["other"]));
        Assert.Equal("mine", File.ReadAllText(tmp["other/notes.txt"]));
    }
}
