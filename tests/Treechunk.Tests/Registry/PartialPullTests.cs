using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;
using Xunit.Abstractions;

namespace Treechunk.Tests.Registry;

/// <summary>
/// Partial pulls of zstd:chunked layers from a real docker-registry, through a
/// <see cref="FaultProxy"/> that counts the body bytes that really crossed: v1 is pulled whole,
/// then v2 (v1 with a few files changed) fetches only what the layout lacks and rebuilds blobs
/// identical to a full pull; a registry that sends wrong bytes for a range fails the pull.
/// </summary>
public class PartialPullTests(ITestOutputHelper output)
{
    /// <summary>Text files of 20-90 KB (unique, compressible), a 2 MB file cut into pieces.</summary>
    private static void CreateV1(string root)
    {
        var rng = new Random(11);
        for (int d = 0; d < 4; d++)
            for (int f = 0; f < 12; f++)
            {
                var text = new StringBuilder();
                int size = rng.Next(20_000, 90_000);
                while (text.Length < size) text.Append(rng.Next(1_000_000)).Append(rng.Next(6) == 0 ? '\n' : ' ');
                var path = Path.Join(root, $"usr/share/pkg{d}/file{f:00}.txt");
                Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                File.WriteAllText(path, text.ToString());
                // One component (and so one layer) per directory: pkg0 stays the same in v2.
                Treechunk.Posix.LibC.SetXattr(path, "user.component", Encoding.UTF8.GetBytes($"pkg{d}"));
            }
        Directory.CreateDirectory(Path.Join(root, "usr/lib"));
        var big = new StringBuilder();
        for (int i = 0; big.Length < 2_000_000; i++) big.Append("line ").Append(i).Append(' ').Append(rng.Next()).Append('\n');
        File.WriteAllText(Path.Join(root, "usr/lib/big.txt"), big.ToString());
        Treechunk.Posix.LibC.SetXattr(Path.Join(root, "usr/lib/big.txt"), "user.component", "big"u8.ToArray());
    }

    /// <summary>v1 with two small files and one line of the big one changed, and one file added.</summary>
    private static void MakeV2(string v1, string v2)
    {
        Proc.Check("cp", "-a", v1, v2);
        File.AppendAllText(Path.Join(v2, "usr/share/pkg1/file03.txt"), "changed in v2\n");
        File.AppendAllText(Path.Join(v2, "usr/share/pkg2/file07.txt"), "changed in v2\n");
        var big = Path.Join(v2, "usr/lib/big.txt");
        File.WriteAllText(big, File.ReadAllText(big).Replace("line 30000 ", "line 30000 (patched) "));
        File.WriteAllText(Path.Join(v2, "usr/share/pkg3/new.txt"), "new in v2\n");
        Treechunk.Posix.LibC.SetXattr(Path.Join(v2, "usr/share/pkg3/new.txt"), "user.component", "pkg3"u8.ToArray());
    }

    private sealed record Fixture(TempDir Tmp, Dictionary<string, string> Env, RegistryServer Registry, FaultProxy Proxy,
        List<JsonNode> V1Layers, List<JsonNode> V2Layers) : IDisposable
    {
        public void Dispose()
        {
            Proxy.Dispose();
            Registry.Dispose();
            Tmp.Dispose();
        }
    }

    private static Fixture Setup(string name)
    {
        var tmp = new TempDir(name);
        var env = RegistryClientTests.Env(tmp);
        CreateV1(tmp["v1"]);
        MakeV2(tmp["v1"], tmp["v2"]);
        var registry = RegistryServer.StartAnonymous();
        var proxy = new FaultProxy(registry);
        foreach (var v in new[] { "v1", "v2" })
        {
            ZstdChunkedTests.Build(tmp[v], $"oci:{tmp["built"]}:{v}", "--compression", "zstd:chunked");
            RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{tmp["built"]}:{v}", $"docker://{registry.Host}/os/img:{v}");
        }
        var v1 = ZstdChunkedTests.Manifest(tmp["built"], "v1")["layers"]!.AsArray().Select(l => l!).ToList();
        var v2 = ZstdChunkedTests.Manifest(tmp["built"], "v2")["layers"]!.AsArray().Select(l => l!).ToList();
        return new Fixture(tmp, env, registry, proxy, v1, v2);
    }

    [Fact]
    public void Pulling_v2_after_v1_fetches_only_what_changed_and_rebuilds_the_blobs_of_a_full_pull()
    {
        using var fx = Setup("partial-pull");
        var (tmp, env, proxy) = (fx.Tmp, fx.Env, fx.Proxy);
        var v1Digests = fx.V1Layers.Select(l => (string)l["digest"]!).ToHashSet();
        var changed = fx.V2Layers.Where(l => !v1Digests.Contains((string)l["digest"]!)).ToList();
        Assert.NotEmpty(changed);
        Assert.True(changed.Count < fx.V2Layers.Count, "some layers should be unchanged");

        RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{proxy.Host}/os/img:v1", $"oci:{tmp["local"]}:v1");
        var before = proxy.Requests.Count;
        var pull = RegistryClientTests.Json(env, "oci", "pull", "--insecure", "--metrics-file", tmp["metrics.json"],
            $"docker://{proxy.Host}/os/img:v2", $"oci:{tmp["local"]}:v2");
        output.WriteLine(pull.ToJsonString());
        output.WriteLine(string.Join("\n", proxy.Requests.Skip(before)));

        // Every changed layer went through the partial path; nothing else did.
        var partial = pull["partial_layers"]!.AsArray().Select(p => p!).ToList();
        Assert.Equal(changed.Select(l => (string)l["digest"]!).Order(), partial.Select(p => (string)p["digest"]!).Order());
        long changedBytes = changed.Sum(l => (long)l["size"]!), fetched = 0;
        foreach (var p in partial)
        {
            var digest = (string)p["digest"]!;
            // What the client counts is what crossed the wire for that blob (the proxy's count).
            var crossed = proxy.Requests.Skip(before).Where(r => r.Method == "GET" && r.Path.EndsWith("/blobs/" + digest, StringComparison.Ordinal)).ToList();
            Assert.Equal(crossed.Sum(r => r.ResponseBodyBytes), (long)p["bytes_fetched"]!);
            Assert.Equal(crossed.Count, (int)p["requests"]!);
            Assert.All(crossed, r => Assert.Equal(206, r.Status));
            Assert.True((long)p["bytes_local"]! > 0);
            fetched += (long)p["bytes_fetched"]!;
        }
        output.WriteLine($"fetched {fetched} of {changedBytes} bytes of changed layers");
        Assert.True(fetched * 5 < changedBytes, $"fetched {fetched} bytes for {changedBytes} bytes of changed layers");

        // The metrics file says the same.
        var metrics = JsonNode.Parse(File.ReadAllText(tmp["metrics.json"]))!;
        Assert.Equal(pull["partial_layers"]!.ToJsonString(), metrics["partial_layers"]!.ToJsonString());
        Assert.Equal(fetched, (long)metrics["partial_bytes_fetched"]!);

        // A full pull into an empty layout gets the same blobs, byte for byte.
        RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{fx.Registry.Host}/os/img:v2", $"oci:{tmp["full"]}:v2");
        foreach (var l in fx.V2Layers)
            Assert.Equal(File.ReadAllBytes(ZstdChunkedTests.BlobPath(tmp["full"], (string)l["digest"]!)),
                         File.ReadAllBytes(ZstdChunkedTests.BlobPath(tmp["local"], (string)l["digest"]!)));
        Peers.SkopeoAgrees($"oci:{tmp["local"]}:v2");
        Peers.SkopeoDecompressesToTheDiffIds($"oci:{tmp["local"]}:v2", tmp["dir"]);

        // oci copy from the registry takes the same path; --no-partial downloads whole.
        RegistryClientTests.Json(env, "oci", "copy", $"oci:{tmp["local"]}:v1", $"oci:{tmp["copy"]}:v1");
        var copy = RegistryClientTests.Json(env, "oci", "copy", "--insecure", $"docker://{proxy.Host}/os/img:v2", $"oci:{tmp["copy"]}:v2");
        Assert.Equal(pull["partial_layers"]!.ToJsonString(), copy["partial_layers"]!.ToJsonString());
        RegistryClientTests.Json(env, "oci", "copy", $"oci:{tmp["local"]}:v1", $"oci:{tmp["whole"]}:v1");
        var whole = RegistryClientTests.Json(env, "oci", "copy", "--insecure", "--no-partial", $"docker://{proxy.Host}/os/img:v2", $"oci:{tmp["whole"]}:v2");
        Assert.Empty(whole["partial_layers"]!.AsArray());
        Assert.Equal(changedBytes + (long)ZstdChunkedTests.Manifest(tmp["built"], "v2")["config"]!["size"]!, (long)whole["bytes_copied"]!);
    }

    [Fact]
    public void A_registry_sending_wrong_bytes_for_a_range_fails_the_pull_naming_the_layer_and_keeps_nothing()
    {
        using var fx = Setup("partial-fault");
        var (tmp, env, proxy) = (fx.Tmp, fx.Env, fx.Proxy);
        var v1Digests = fx.V1Layers.Select(l => (string)l["digest"]!).ToHashSet();
        var target = fx.V2Layers.Where(l => !v1Digests.Contains((string)l["digest"]!)).OrderByDescending(l => (long)l["size"]!).First();
        var digest = (string)target["digest"]!;

        RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{fx.Registry.Host}/os/img:v1", $"oci:{tmp["local"]}:v1");
        // A good partial pull into a copy first, to learn how many ranges the layer takes; the
        // faulty one then flips a byte of the last of them (a file's content frames).
        Proc.Check("cp", "-a", tmp["local"], tmp["probe"]);
        var good = RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{fx.Registry.Host}/os/img:v2", $"oci:{tmp["probe"]}:v2");
        int ranges = (int)good["partial_layers"]!.AsArray().First(p => (string)p!["digest"]! == digest)!["requests"]!;
        Assert.True(ranges >= 3, good.ToJsonString());
        var flip = proxy.FlipResponseBytes("GET", $"/blobs/{digest}$", atOffset: 10, onMatch: ranges, times: 1);

        var error = RegistryClientTests.Fails(env, 1, "oci", "pull", "--insecure", "--parallel", "1", $"docker://{proxy.Host}/os/img:v2", $"oci:{tmp["local"]}:v2");
        output.WriteLine(error);
        output.WriteLine(proxy.Describe());
        Assert.Equal(1, flip.Fired);
        Assert.Contains($"layer {digest}", error);
        Assert.DoesNotContain("   at ", error);
        Assert.False(File.Exists(ZstdChunkedTests.BlobPath(tmp["local"], digest)));
        // No temp file left behind, and no v2 tag.
        Assert.All(Directory.GetFiles(tmp["local/blobs/sha256"]), f => Assert.Matches("^[0-9a-f]{64}$", Path.GetFileName(f)));
        var index = JsonNode.Parse(File.ReadAllText(tmp["local/index.json"]))!;
        Assert.DoesNotContain("v2", index["manifests"]!.AsArray().Select(m => (string?)m!["annotations"]?["org.opencontainers.image.ref.name"]));
    }

    /// <summary>
    /// skopeo 1.9 writes zstd:chunked in containers/image's earlier layout (its own annotation
    /// names, no tar-split): such layers are rebuilt partially too, their content frames copied
    /// from the skopeo-made v1, their header frames fetched.
    /// </summary>
    [Fact]
    public void Zstd_chunked_layers_that_skopeo_wrote_are_pulled_partially_too()
    {
        using var tmp = new TempDir("partial-skopeo");
        var env = RegistryClientTests.Env(tmp);
        CreateV1(tmp["v1"]);
        MakeV2(tmp["v1"], tmp["v2"]);
        using var registry = RegistryServer.StartAnonymous();
        using var proxy = new FaultProxy(registry);
        foreach (var v in new[] { "v1", "v2" })
        {
            ZstdChunkedTests.Build(tmp[v], $"oci:{tmp["plain"]}:{v}", "--compression", "zstd");
            Skopeo.Check("copy", "--dest-tls-verify=false", "--dest-compress-format", "zstd:chunked", "--dest-compress",
                $"oci:{tmp["plain"]}:{v}", $"docker://{registry.Host}/os/sk:{v}");
        }
        var manifest = JsonNode.Parse(Skopeo.Check("inspect", "--raw", "--tls-verify=false", $"docker://{registry.Host}/os/sk:v2"))!;
        Assert.All(manifest["layers"]!.AsArray(), l => Assert.NotNull(l!["annotations"]?["io.containers.zstd-chunked.manifest-position"]));

        RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{proxy.Host}/os/sk:v1", $"oci:{tmp["local"]}:v1");
        var pull = RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{proxy.Host}/os/sk:v2", $"oci:{tmp["local"]}:v2");
        output.WriteLine(pull["partial_layers"]!.ToJsonString());
        var partial = pull["partial_layers"]!.AsArray().Select(p => p!).ToList();
        Assert.NotEmpty(partial);
        // skopeo 1.9 does not cut big files into pieces, so the layer of big.txt is fetched whole;
        // the layers of small files copy what did not change.
        Assert.True(partial.Sum(p => (long)p["bytes_fetched"]!) * 2 < partial.Sum(p => (long)p["size"]!));
        Assert.Contains(partial, p => (long)p["bytes_local"]! > 0 && (long)p["bytes_fetched"]! * 3 < (long)p["size"]!);
        foreach (var p in partial)
        {
            Assert.Equal(0, (long)p["bytes_rebuilt"]!);
            Assert.Equal(proxy.ResponseBodyBytes("GET", $"/blobs/{(string)p["digest"]!}$") - FullGets((string)p["digest"]!), (long)p["bytes_fetched"]!);
        }
        Peers.SkopeoDecompressesToTheDiffIds($"oci:{tmp["local"]}:v2", tmp["dir"]);

        // The v1 pull fetched its blobs whole; only v2's ranges count for the partial layers.
        long FullGets(string digest) => proxy.Matching("GET", $"/blobs/{digest}$").Where(r => r.Range == null).Sum(r => r.ResponseBodyBytes);
    }

    /// <summary>
    /// oci diff's partial-pull column is the pull's own plan: for each changed layer of v2, the
    /// bytes diff reports are the bytes the following pull fetches (and the proxy saw cross),
    /// while diff itself only reads table-of-contents ranges. A gzip layer has no TOC: diff says
    /// "layer" and counts it whole.
    /// </summary>
    [Fact]
    public void Oci_diff_reports_the_bytes_a_partial_pull_then_fetches()
    {
        using var fx = Setup("partial-diff");
        var (tmp, env, proxy) = (fx.Tmp, fx.Env, fx.Proxy);
        RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{proxy.Host}/os/img:v1", $"oci:{tmp["local"]}:v1");

        var before = proxy.Requests.Count;
        var diff = RegistryClientTests.Json(env, "oci", "diff", "--insecure", "--no-files", $"oci:{tmp["local"]}:v1", $"docker://{proxy.Host}/os/img:v2");
        var diffRequests = proxy.Requests.Skip(before).ToList();
        output.WriteLine(diff["layers"]!["new"]!.ToJsonString());
        // Diff read manifests, config and TOC ranges; no layer blob came whole.
        Assert.All(diffRequests.Where(r => r.Method == "GET" && r.Path.Contains("/blobs/") && fx.V2Layers.Any(l => r.Path.EndsWith((string)l["digest"]!, StringComparison.Ordinal))),
            r => Assert.Equal(206, r.Status));

        var pull = RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{proxy.Host}/os/img:v2", $"oci:{tmp["local"]}:v2");
        var fetched = pull["partial_layers"]!.AsArray().ToDictionary(p => (string)p!["digest"]!, p => (long)p!["bytes_fetched"]!);
        var newLayers = diff["layers"]!["new"]!.AsArray().Select(l => l!).ToList();
        var downloaded = newLayers.Where(l => (string)l["status"]! != "reused").ToList();
        Assert.Equal(fetched.Keys.Order(), downloaded.Select(l => (string)l["digest"]!).Order());
        foreach (var l in downloaded)
        {
            Assert.Equal("toc", (string)l["partial_pull_method"]!);
            Assert.True((bool)l["toc"]!);
            Assert.Equal(fetched[(string)l["digest"]!], (long)l["partial_pull_bytes"]!);
            Assert.True((long)l["partial_pull_bytes"]! * 3 < (long)l["download_bytes"]!, l.ToJsonString());
        }
        Assert.Equal(fetched.Values.Sum(), (long)diff["totals"]!["partial_pull_bytes"]!);
        Assert.All(newLayers.Where(l => (string)l["status"]! == "reused"), l => Assert.Equal(0, (long)l["partial_pull_bytes"]!));

        // The same images in gzip: no TOC, so a partial pull is a whole download.
        foreach (var v in new[] { "v1", "v2" })
            ZstdChunkedTests.Build(tmp[v], $"oci:{tmp["gzip"]}:{v}");
        var plain = RegistryClientTests.Json(env, "oci", "diff", "--no-files", $"oci:{tmp["gzip"]}:v1", $"oci:{tmp["gzip"]}:v2");
        Assert.NotEqual(0, (long)plain["totals"]!["download_bytes"]!);
        Assert.Equal((long)plain["totals"]!["download_bytes"]!, (long)plain["totals"]!["partial_pull_bytes"]!);
        Assert.All(plain["layers"]!["new"]!.AsArray().Where(l => (string)l!["status"]! != "reused"),
            l => Assert.Equal("layer", (string)l!["partial_pull_method"]!));
    }
}
