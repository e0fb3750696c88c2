using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;
using Xunit.Abstractions;

namespace Treechunk.Tests.CommandLine;

/// <summary>
/// --compression zstd:chunked, checked from outside: skopeo and podman read the image, the zstd
/// CLI decompresses each layer to its diff_id (the same as plain zstd's), the table of contents
/// the annotations point at describes every file's frames exactly, and the tar-split rebuilds
/// the tar.
/// </summary>
public class ZstdChunkedTests(ITestOutputHelper output)
{
    private const string ChecksumKey = "io.github.containers.zstd-chunked.manifest-checksum";
    private const string PositionKey = "io.github.containers.zstd-chunked.manifest-position";
    private const string TarSplitKey = "io.github.containers.zstd-chunked.tarsplit-position";

    internal static JsonNode Build(string rootfs, string output, params string[] extra) =>
        JsonNode.Parse(TreechunkCli.Check(["compose", "build-chunked-oci", "--rootfs", rootfs, "--output", output, .. extra, "--json"]))!;

    /// <summary>SyntheticTree plus files big enough to be cut into several frames.</summary>
    internal static void CreateTree(string root, int seed = 7)
    {
        SyntheticTree.Create(root);
        var rng = new Random(seed);
        var text = new StringBuilder();
        while (text.Length < 1_500_000) text.Append(rng.Next()).Append(rng.Next(3) == 0 ? '\n' : ' ');
        File.WriteAllText(Path.Join(root, "usr/share/big.txt"), text.ToString());
        var random = new byte[700_000];
        rng.NextBytes(random);
        File.WriteAllBytes(Path.Join(root, "usr/lib/random.bin"), random);
    }

    internal static JsonNode Manifest(string layout, string tag) => JsonNode.Parse(File.ReadAllBytes(BlobPath(layout, Digest(layout, tag))))!;

    /// <summary>The digest the layout's index.json gives the tag.</summary>
    internal static string Digest(string layout, string tag)
    {
        var index = JsonNode.Parse(File.ReadAllText(Path.Join(layout, "index.json")))!;
        return (string)index["manifests"]!.AsArray().First(m => (string?)m!["annotations"]?["org.opencontainers.image.ref.name"] == tag)!["digest"]!;
    }

    internal static string BlobPath(string layout, string digest) => Path.Join(layout, "blobs/sha256", digest["sha256:".Length..]);

    private static byte[] ZstdCli(byte[] compressed) => Proc.RunBytes(Tools.Require("zstd"), ["-dc"], compressed);

    /// <summary>The TOC a layer's annotations point at, checked against its checksum annotation, decompressed by the zstd CLI.</summary>
    internal static JsonNode Toc(string blob, JsonNode layer)
    {
        var pos = ((string)layer["annotations"]![PositionKey]!).Split(':').Select(long.Parse).ToArray();
        Assert.Equal(4, pos.Length);
        Assert.Equal(1, pos[3]);
        var bytes = File.ReadAllBytes(blob);
        var compressed = bytes.AsSpan((int)pos[0], (int)pos[1]).ToArray();
        Assert.Equal((string)layer["annotations"]![ChecksumKey]!, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(compressed)));
        // The skippable frame that holds it: magic 0x184D2A50, then its length.
        Assert.Equal(0x184D2A50u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)pos[0] - 8)));
        Assert.Equal((uint)pos[1], BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan((int)pos[0] - 4)));
        var json = ZstdCli(compressed);
        Assert.Equal(pos[2], json.Length);
        return JsonNode.Parse(json)!;
    }

    /// <summary>(offset, end, chunk digest, chunk size) of each content frame of each file, by name.</summary>
    internal static Dictionary<string, List<(long Offset, long End, string Digest, long Size)>> Frames(JsonNode toc)
    {
        var entries = toc["entries"]!.AsArray();
        var result = new Dictionary<string, List<(long, long, string, long)>>();
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i]!;
            if ((string)e["type"]! != "reg" || (long?)e["size"] is null or 0) continue;
            var list = new List<(long, long, string, long)>();
            int j = i + 1;
            while (j < entries.Count && (string)entries[j]!["type"]! == "chunk") j++;
            if (j == i + 1) list.Add(((long)e["offset"]!, (long)e["endOffset"]!, (string)e["digest"]!, (long)e["size"]!));
            else
                for (int k = i; k < j; k++)
                {
                    long end = k + 1 < j ? (long)entries[k + 1]!["offset"]! : (long)e["endOffset"]!;
                    list.Add(((long)entries[k]!["offset"]!, end, (string)entries[k]!["chunkDigest"]!, (long)entries[k]!["chunkSize"]!));
                }
            result[(string)e["name"]!] = list;
            i = j - 1;
        }
        return result;
    }

    [Fact]
    public void Zstd_chunked_layers_are_valid_zstd_with_the_plain_zstd_diff_ids_and_skopeo_reads_them()
    {
        using var tmp = new TempDir("zchunked");
        CreateTree(tmp["rootfs"]);
        var chunked = Build(tmp["rootfs"], $"oci:{tmp["chunked"]}:v1", "--compression", "zstd:chunked");
        var plain = Build(tmp["rootfs"], $"oci:{tmp["plain"]}:v1", "--compression", "zstd");

        Peers.SkopeoAgrees($"oci:{tmp["chunked"]}:v1");
        Peers.SkopeoDecompressesToTheDiffIds($"oci:{tmp["chunked"]}:v1", tmp["dir"]);
        var skopeoManifest = JsonNode.Parse(Proc.Check(Tools.Require("skopeo"), "inspect", "--raw", $"oci:{tmp["chunked"]}:v1"))!;
        var layers = skopeoManifest["layers"]!.AsArray();
        Assert.True(layers.Count > 1, "the synthetic tree should give several layers");
        foreach (var layer in layers)
        {
            Assert.Equal("application/vnd.oci.image.layer.v1.tar+zstd", (string)layer!["mediaType"]!);
            Assert.NotNull(layer["annotations"]?[ChecksumKey]);
            Assert.NotNull(layer["annotations"]?[PositionKey]);
            Assert.NotNull(layer["annotations"]?[TarSplitKey]);
            // The names podman 4.3 / skopeo 1.9 read, with the same values.
            Assert.Equal((string)layer["annotations"]![ChecksumKey]!, (string?)layer["annotations"]!["io.containers.zstd-chunked.manifest-checksum"]);
            Assert.Equal((string)layer["annotations"]![PositionKey]!, (string?)layer["annotations"]!["io.containers.zstd-chunked.manifest-position"]);
            // The zstd CLI reads the whole blob (skipping the skippable frames) as one stream.
            var tar = Proc.RunBytes(Tools.Require("zstd"), ["-dc", BlobPath(tmp["chunked"], (string)layer["digest"]!)], []);
            Assert.Contains("sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar)), chunked["layers"]!.AsArray().Select(l => (string)l!["diff_id"]!));
        }

        // Same tar as plain zstd (same diff_ids), different blobs: the option is not ignored.
        Assert.Equal(plain["layers"]!.AsArray().Select(l => (string)l!["diff_id"]!), chunked["layers"]!.AsArray().Select(l => (string)l!["diff_id"]!));
        Assert.Empty(plain["layers"]!.AsArray().Select(l => (string)l!["digest"]!).Intersect(chunked["layers"]!.AsArray().Select(l => (string)l!["digest"]!)));
        Assert.All(Manifest(tmp["plain"], "v1")["layers"]!.AsArray(), l => Assert.Null(l!["annotations"]?[ChecksumKey]));
    }

    [Fact]
    public void The_table_of_contents_describes_every_files_frames_and_the_tar_split_rebuilds_the_tar()
    {
        using var tmp = new TempDir("zctoc");
        CreateTree(tmp["rootfs"]);
        var built = Build(tmp["rootfs"], $"oci:{tmp["image"]}:v1", "--compression", "zstd:chunked");
        var diffIds = built["layers"]!.AsArray().Select(l => (string)l!["diff_id"]!).ToList();
        int files = 0, multiFrame = 0;
        var manifest = Manifest(tmp["image"], "v1");
        for (int li = 0; li < manifest["layers"]!.AsArray().Count; li++)
        {
            var layer = manifest["layers"]![li]!;
            var blobPath = BlobPath(tmp["image"], (string)layer["digest"]!);
            var blob = File.ReadAllBytes(blobPath);
            var toc = Toc(blobPath, layer);
            Assert.Equal(1, (int)toc["version"]!);
            foreach (var (name, frames) in Frames(toc))
            {
                var content = File.ReadAllBytes(Path.Join(tmp["rootfs"], name));
                var entry = toc["entries"]!.AsArray().First(e => (string)e!["name"]! == name && (string)e["type"]! == "reg")!;
                Assert.Equal("sha256:" + Convert.ToHexStringLower(SHA256.HashData(content)), (string)entry["digest"]!);
                Assert.Equal(content.Length, (long)entry["size"]!);
                // Each frame alone decompresses to its piece; the pieces are the file, in order.
                using var whole = new MemoryStream();
                foreach (var (offset, end, digest, size) in frames)
                {
                    var piece = ZstdCli(blob.AsSpan((int)offset, (int)(end - offset)).ToArray());
                    Assert.Equal(size, piece.Length);
                    Assert.Equal(digest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(piece)));
                    whole.Write(piece);
                }
                Assert.Equal(content, whole.ToArray());
                files++;
                if (frames.Count > 1) multiFrame++;
            }

            // The footer, the last skippable frame, points at the TOC and the tar-split as the annotations do.
            var footer = blob[^64..];
            Assert.Equal(0x184D2A50u, BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(blob.Length - 72)));
            Assert.Equal("GNUlInUx", Encoding.ASCII.GetString(footer, 56, 8));
            var pos = ((string)layer["annotations"]![PositionKey]!).Split(':').Select(long.Parse).ToArray();
            var split = ((string)layer["annotations"]![TarSplitKey]!).Split(':').Select(long.Parse).ToArray();
            Assert.Equal([pos[0], pos[1], pos[2], 1, split[0], split[1], split[2]],
                Enumerable.Range(0, 7).Select(i => (long)BinaryPrimitives.ReadUInt64LittleEndian(footer.AsSpan(i * 8))).ToArray());

            // tar-split: segments (raw headers and padding) and files (content from the tree) give back the tar.
            var tarSplitCompressed = blob.AsSpan((int)split[0], (int)split[1]).ToArray();
            Assert.Equal((string)toc["tarSplitDigest"]!, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tarSplitCompressed)));
            var lines = Encoding.UTF8.GetString(ZstdCli(tarSplitCompressed)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            using var tar = new MemoryStream();
            int position = 0;
            foreach (var line in lines)
            {
                var e = JsonNode.Parse(line)!;
                Assert.Equal(position++, (int)e["position"]!);
                if ((int)e["type"]! == 2) tar.Write(Convert.FromBase64String((string)e["payload"]!));
                else if ((long?)e["size"] is > 0)
                {
                    var name = (string?)e["name"] ?? Encoding.UTF8.GetString(Convert.FromBase64String((string)e["name_raw"]!));
                    tar.Write(File.ReadAllBytes(Path.Join(tmp["rootfs"], name)));
                }
            }
            Assert.Equal(diffIds[li], "sha256:" + Convert.ToHexStringLower(SHA256.HashData(tar.ToArray())));
        }
        output.WriteLine($"{files} files, {multiFrame} in several frames");
        Assert.True(files >= 10);
        Assert.True(multiFrame >= 2, "big.txt and random.bin are cut into pieces");
    }

    [Fact]
    public void Builds_are_reproducible_and_a_file_compresses_to_the_same_frames_in_another_layer()
    {
        using var tmp = new TempDir("zcrepro");
        CreateTree(tmp["rootfs"]);
        var a = Build(tmp["rootfs"], $"oci:{tmp["a"]}:v1", "--compression", "zstd:chunked");
        var b = Build(tmp["rootfs"], $"oci:{tmp["b"]}:v1", "--compression", "zstd:chunked");
        Assert.Equal((string)a["manifest_digest"]!, (string)b["manifest_digest"]!);

        // The same big file next to other neighbours, in one layer: its frames are the same bytes.
        Directory.CreateDirectory(tmp["other/usr/share"]);
        File.Copy(tmp["rootfs/usr/share/big.txt"], tmp["other/usr/share/big.txt"]);
        File.WriteAllText(tmp["other/usr/share/aaa.txt"], "a neighbour that comes first\n");
        Build(tmp["other"], $"oci:{tmp["c"]}:v1", "--compression", "zstd:chunked", "--max-layers", "1");
        byte[] FramesOf(string layout, string name)
        {
            foreach (var layer in Manifest(layout, "v1")["layers"]!.AsArray())
            {
                var path = BlobPath(layout, (string)layer!["digest"]!);
                if (Frames(Toc(path, layer)).TryGetValue(name, out var frames))
                {
                    var blob = File.ReadAllBytes(path);
                    return blob.AsSpan((int)frames[0].Offset, (int)(frames[^1].End - frames[0].Offset)).ToArray();
                }
            }
            throw new Xunit.Sdk.XunitException($"{name} is in no layer of {layout}");
        }
        var first = FramesOf(tmp["a"], "usr/share/big.txt");
        var moved = FramesOf(tmp["c"], "usr/share/big.txt");
        Assert.Equal(first, moved);
    }

    [Fact]
    public void Container_encapsulate_writes_zstd_chunked_layers_too_the_commit_layer_included()
    {
        using var tmp = new TempDir("zcencap");
        CreateTree(tmp["rootfs"]);
        Directory.Delete(tmp["rootfs/dev"], recursive: true); // OSTree holds no device nodes
        TreechunkCli.Check("ostree", "init", "--repo", tmp["repo"], "--mode", "archive");
        TreechunkCli.Check("ostree", "commit", "--repo", tmp["repo"], "--branch", "os/test", "--subject", "t", tmp["rootfs"]);
        TreechunkCli.Check("compose", "container-encapsulate", "--repo", tmp["repo"], "os/test", $"oci:{tmp["image"]}:v1", "--compression", "zstd:chunked");
        var layers = Manifest(tmp["image"], "v1")["layers"]!.AsArray();
        Assert.True(layers.Count >= 2);
        foreach (var layer in layers) Toc(BlobPath(tmp["image"], (string)layer!["digest"]!), layer);
        Peers.SkopeoDecompressesToTheDiffIds($"oci:{tmp["image"]}:v1", tmp["dir"]);
    }

    [Fact]
    public void Layers_from_the_layer_cache_keep_their_table_of_contents_annotations()
    {
        using var tmp = new TempDir("zccache");
        CreateTree(tmp["rootfs"]);
        string[] cache = ["--compression", "zstd:chunked", "--cache-dir", tmp["cache"], "--cache-layers"];
        var first = Build(tmp["rootfs"], $"oci:{tmp["a"]}:v1", [.. cache, "--metrics-file", tmp["m1.json"]]);
        var second = Build(tmp["rootfs"], $"oci:{tmp["b"]}:v1", [.. cache, "--metrics-file", tmp["m2.json"]]);
        var reused = (int)JsonNode.Parse(File.ReadAllText(tmp["m2.json"]))!["layers_reused"]!;
        Assert.Equal(first["layers"]!.AsArray().Count, reused);
        Assert.Equal((string)first["manifest_digest"]!, (string)second["manifest_digest"]!);
        foreach (var layer in Manifest(tmp["b"], "v1")["layers"]!.AsArray())
            Toc(BlobPath(tmp["b"], (string)layer!["digest"]!), layer);
        // Plain zstd with the same cache is another key: nothing of the zstd:chunked blobs is reused.
        Build(tmp["rootfs"], $"oci:{tmp["c"]}:v1", "--compression", "zstd", "--cache-dir", tmp["cache"], "--cache-layers", "--metrics-file", tmp["m3.json"]);
        Assert.Equal(0, (int)JsonNode.Parse(File.ReadAllText(tmp["m3.json"]))!["layers_reused"]!);
    }

    /// <summary>
    /// podman 4.3 (Debian 12) pulls the image partially: with overlay storage and partial images
    /// enabled it says it retrieved each layer as a partial blob, the registry served ranges
    /// (206), and the layers it stored have our diff_ids and the tree's bytes.
    /// </summary>
    [Fact]
    public void Podman_pulls_a_zstd_chunked_image_partially_from_a_registry()
    {
        using var tmp = new TempDir("zcpodman");
        CreateTree(tmp["rootfs"]);
        using var reg = RegistryServer.StartAnonymous();
        var env = Treechunk.Tests.Registry.RegistryClientTests.Env(tmp);
        var built = Treechunk.Tests.Registry.RegistryClientTests.Json(env, "compose", "build-chunked-oci", "--rootfs", tmp["rootfs"],
            "--output", $"docker://{reg.Host}/os/chunked:v1", "--compression", "zstd:chunked", "--insecure");
        var layerDigests = built["layers"]!.AsArray().Select(l => (string)l!["digest"]!).ToList();
        File.WriteAllText(tmp["storage.conf"], $"""
            [storage]
            driver = "overlay"
            graphroot = "{tmp["graph"]}"
            runroot = "{tmp["run-podman"]}"
            [storage.options]
            pull_options = {"{"}enable_partial_images = "true", use_hardlinks = "false"{"}"}
            """);
        var podmanEnv = new Dictionary<string, string>(env) { ["CONTAINERS_STORAGE_CONF"] = tmp["storage.conf"] };
        // podman reads $DOCKER_CONFIG/config.json when the variable is set; an empty one, so it has no credentials.
        Directory.CreateDirectory(env["DOCKER_CONFIG"]);
        File.WriteAllText(Path.Join(env["DOCKER_CONFIG"], "config.json"), "{}");
        File.WriteAllText(env["CONTAINERS_REGISTRIES_CONF"], "");
        reg.ClearRequests();
        var pull = Proc.Run(Tools.Require("podman"), ["--log-level=debug", "pull", "--tls-verify=false", $"docker://{reg.Host}/os/chunked:v1"], env: podmanEnv);
        Assert.True(pull.ExitCode == 0, pull.ToString());
        foreach (var digest in layerDigests) Assert.Contains($"Retrieved partial blob {digest}", pull.Stderr);
        var gets = reg.Requests.Where(r => r.Method == "GET" && layerDigests.Any(d => r.Path.EndsWith("/blobs/" + d, StringComparison.Ordinal))).ToList();
        output.WriteLine(string.Join("\n", gets));
        Assert.NotEmpty(gets);
        Assert.All(gets, r => Assert.Equal(206, r.Status));

        var inspect = Proc.Run(Tools.Require("podman"), ["image", "inspect", $"{reg.Host}/os/chunked:v1", "--format", "{{json .RootFS.Layers}}"], env: podmanEnv);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Equal(built["layers"]!.AsArray().Select(l => (string)l!["diff_id"]!), JsonNode.Parse(inspect.Stdout)!.AsArray().Select(l => (string)l!));
        var stored = Directory.GetFiles(tmp["graph/overlay"], "big.txt", SearchOption.AllDirectories).Single(p => p.Contains("/diff/", StringComparison.Ordinal));
        Assert.Equal(File.ReadAllBytes(tmp["rootfs/usr/share/big.txt"]), File.ReadAllBytes(stored));
    }
}
