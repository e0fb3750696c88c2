using System.Text.Json.Nodes;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Registry;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;
using Xunit.Abstractions;

namespace Treechunk.Tests.Delta;

/// <summary>
/// The Debian update pair (bench/update-pair.sh) built as plain zstd at 64 layers, v2 with
/// --previous v1, once for the class; and the ideal update (a zstd -3 tar of only the new and
/// changed entries), from the same script the benchmarks use.
/// </summary>
public sealed class UpdatePairImages : IDisposable
{
    public TempDir Tmp { get; } = new("delta-pair-");
    public string Layout => Tmp["built"];
    public long Ideal { get; }

    public UpdatePairImages()
    {
        var (v1, v2) = Fixtures.UpdatePair;
        var env = new Dictionary<string, string> { ["SOURCE_DATE_EPOCH"] = "1700000000" };
        TreechunkCli.Check(env, "compose", "build-chunked-oci", "--rootfs", v1, "--output", $"oci:{Layout}:v1", "--compression", "zstd", "--max-layers", "64");
        TreechunkCli.Check(env, "compose", "build-chunked-oci", "--rootfs", v2, "--output", $"oci:{Layout}:v2", "--compression", "zstd", "--max-layers", "64", "--previous", $"oci:{Layout}:v1");
        var ideal = JsonNode.Parse(Proc.Check("python3", Path.Join(Fixtures.RepoRoot, "bench/update_measure.py"), "ideal", v1, v2))!;
        Ideal = (long)ideal["ideal_bytes"]!;
    }

    public JsonNode Manifest(string tag) => ZstdChunkedTests.Manifest(Layout, tag);

    public void Dispose() => Tmp.Dispose();
}

/// <summary>
/// Delta updates through a real docker-registry (distribution 2.8, which has no referrers API,
/// so the artifact is at tag sha256-HEX.delta): a client holding v1 rebuilds v2's new layers from
/// patch-from deltas, fetching a fraction of the ideal update, and every rebuilt blob is the
/// pushed one; a delta that cannot be used (damaged, wrong result, old layers missing) falls back
/// to downloading that layer, named, and the pull still succeeds.
/// </summary>
public class DeltaPullTests(UpdatePairImages pair, ITestOutputHelper output) : IClassFixture<UpdatePairImages>
{
    private sealed record Setup(TempDir Tmp, Dictionary<string, string> Env, RegistryServer Registry, JsonNode Created) : IDisposable
    {
        public void Dispose()
        {
            Registry.Dispose();
            Tmp.Dispose();
        }
    }

    /// <summary>v1 and v2 pushed, the deltas made from the registry images and pushed beside v2, v1 pulled into tmp/local.</summary>
    private Setup Start(string name)
    {
        var tmp = new TempDir(name);
        var env = RegistryClientTests.Env(tmp);
        var registry = RegistryServer.StartAnonymous();
        foreach (var v in new[] { "v1", "v2" })
            RegistryClientTests.Json(env, "oci", "push", "--insecure", $"oci:{pair.Layout}:{v}", $"docker://{registry.Host}/os/deb:{v}");
        var created = RegistryClientTests.Json(env, "oci", "delta", "create", "--insecure", "--push",
            $"docker://{registry.Host}/os/deb:v1", $"docker://{registry.Host}/os/deb:v2");
        output.WriteLine(created.ToJsonString());
        RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{registry.Host}/os/deb:v1", $"oci:{tmp["local"]}:v1");
        return new Setup(tmp, env, registry, created);
    }

    private List<string> ChangedLayers()
    {
        var v1 = pair.Manifest("v1")["layers"]!.AsArray().Select(l => (string)l!["digest"]!).ToHashSet();
        return pair.Manifest("v2")["layers"]!.AsArray().Select(l => (string)l!["digest"]!).Where(d => !v1.Contains(d)).Distinct().ToList();
    }

    [Fact]
    public void Pulling_v2_after_v1_with_deltas_fetches_at_most_half_the_ideal_and_gets_the_pushed_image_blob_for_blob()
    {
        using var s = Start("delta-pull-");
        var (tmp, env, registry) = (s.Tmp, s.Env, s.Registry);
        var v2Digest = (string)JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", $"docker://{registry.Host}/os/deb:v2"))!["Digest"]!;
        Assert.Equal(v2Digest, (string)s.Created["new"]!);
        // distribution 2.8 has no referrers API: the artifact is at the tag scheme's tag.
        Assert.Equal($"tag sha256-{v2Digest[7..]}.delta", (string)s.Created["stored_at"]!);
        var changed = ChangedLayers();
        Assert.Equal(changed.Order(), s.Created["deltas"]!.AsArray().Select(d => (string)d!["layer"]!).Order());

        registry.ClearRequests();
        var pull = RegistryClientTests.Json(env, "oci", "pull", "--insecure", "--metrics-file", tmp["metrics.json"],
            $"docker://{registry.Host}/os/deb:v2", $"oci:{tmp["local"]}:v2");
        var requests = registry.Requests;
        output.WriteLine(string.Join("\n", requests));
        // Everything the pull took from the registry, as the registry's access log counts it:
        // manifests, the config, the artifact and the deltas.
        long logged = requests.Where(r => r.Method == "GET").Sum(r => r.ResponseBytes);
        output.WriteLine($"logged {logged} bytes, ideal {pair.Ideal}, changed layers whole {s.Created["new_layer_bytes"]}");
        Assert.True(logged * 2 <= pair.Ideal, $"the pull fetched {logged} bytes, over half the ideal {pair.Ideal}");
        // The client counts the same bodies (all but the 404 that says there is no referrers API).
        Assert.Equal((long)pull["bytes_received"]!, requests.Where(r => r.Method == "GET" && r.Status < 300).Sum(r => r.ResponseBytes));

        // Every new layer came from its delta, none from its own blob.
        Assert.Equal(changed.Order(), pull["delta_layers"]!.AsArray().Select(d => (string)d!["digest"]!).Order());
        Assert.Empty(pull["delta_fallbacks"]!.AsArray());
        Assert.All(changed, d => Assert.Equal(0, registry.CountBlobGets(d)));
        Assert.Equal(pull["delta_layers"]!.AsArray().Sum(d => (long)d!["bytes_fetched"]!), (long)pull["bytes_fetched_by_method"]!["delta"]!);
        Assert.All(pull["transfers"]!.AsArray().Where(t => changed.Contains((string)t!["digest"]!)), t => Assert.Equal("delta", (string)t!["method"]!));
        var metrics = JsonNode.Parse(File.ReadAllText(tmp["metrics.json"]))!;
        Assert.Equal(pull["delta_layers"]!.ToJsonString(), metrics["delta_layers"]!.ToJsonString());
        Assert.Equal(pull["bytes_fetched_by_method"]!.ToJsonString(), metrics["bytes_fetched_by_method"]!.ToJsonString());

        // The layout's v2 is the pushed image, blob for blob.
        var index = JsonNode.Parse(File.ReadAllText(tmp["local/index.json"]))!;
        Assert.Equal(v2Digest, (string)index["manifests"]!.AsArray().First(m => (string?)m!["annotations"]?["org.opencontainers.image.ref.name"] == "v2")!["digest"]!);
        TreechunkCli.Check(env, "oci", "verify-layers", $"oci:{tmp["local"]}:v2");
        foreach (var layer in pair.Manifest("v2")["layers"]!.AsArray())
            Assert.Equal(File.ReadAllBytes(ZstdChunkedTests.BlobPath(pair.Layout, (string)layer!["digest"]!)),
                         File.ReadAllBytes(ZstdChunkedTests.BlobPath(tmp["local"], (string)layer["digest"]!)));

        // --no-deltas downloads the new layers whole.
        RegistryClientTests.Json(env, "oci", "copy", $"oci:{tmp["local"]}:v1", $"oci:{tmp["plain"]}:v1");
        registry.ClearRequests();
        var plain = RegistryClientTests.Json(env, "oci", "copy", "--insecure", "--no-deltas", $"docker://{registry.Host}/os/deb:v2", $"oci:{tmp["plain"]}:v2");
        Assert.Empty(plain["delta_layers"]!.AsArray());
        Assert.All(changed, d => Assert.Equal(1, registry.CountBlobGets(d)));
        Assert.True((long)plain["bytes_received"]! > 3 * logged, plain.ToJsonString());
    }

    [Fact]
    public void Skopeo_copies_v2_as_before_with_the_deltas_attached()
    {
        using var s = Start("delta-skopeo-");
        var v2Digest = (string)s.Created["new"]!;
        Skopeo.Check("copy", "--src-tls-verify=false", $"docker://{s.Registry.Host}/os/deb:v2", $"oci:{s.Tmp["sk"]}:v2");
        var copied = JsonNode.Parse(Skopeo.Check("inspect", $"oci:{s.Tmp["sk"]}:v2"))!;
        Assert.Equal(v2Digest, (string)copied["Digest"]!);
        Assert.Equal(pair.Manifest("v2")["layers"]!.AsArray().Count, copied["Layers"]!.AsArray().Count);
        // The tag list shows the artifact's tag beside the images; skopeo pulls the image by its own tag.
        var tags = JsonNode.Parse(Skopeo.Check("list-tags", "--tls-verify=false", $"docker://{s.Registry.Host}/os/deb"))!["Tags"]!.AsArray().Select(t => (string)t!).ToList();
        Assert.Contains($"sha256-{v2Digest[7..]}.delta", tags);
    }

    /// <summary>The delta artifact as stored (at its tag), its manifest parsed.</summary>
    private static (string Tag, JsonNode Manifest) Artifact(Setup s)
    {
        var tag = $"sha256-{((string)s.Created["new"]!)[7..]}.delta";
        var raw = Skopeo.Check("inspect", "--raw", "--tls-verify=false", $"docker://{s.Registry.Host}/os/deb:{tag}");
        return (tag, JsonNode.Parse(raw)!);
    }

    private JsonNode PullV2(Setup s, string host)
    {
        var r = TreechunkCli.RunWithEnv(s.Env, "oci", "pull", "--insecure", "--json", $"docker://{host}/os/deb:v2", $"oci:{s.Tmp["local"]}:v2");
        output.WriteLine(r.Stderr);
        Assert.True(r.ExitCode == 0, r.ToString());
        TreechunkCli.Check(s.Env, "oci", "verify-layers", $"oci:{s.Tmp["local"]}:v2");
        var json = JsonNode.Parse(r.Stdout)!;
        json["stderr"] = r.Stderr;
        return json;
    }

    private static void FellBack(JsonNode pull, string layer, string why)
    {
        var fallback = pull["delta_fallbacks"]!.AsArray().Single(f => (string)f!["digest"]! == layer)!;
        Assert.Contains(why, (string)fallback["reason"]!);
        Assert.Contains($"warning: layer {layer}: not rebuilt from its delta", (string)pull["stderr"]!);
        Assert.Equal("whole", (string)pull["transfers"]!.AsArray().Single(t => (string)t!["digest"]! == layer)!["method"]!);
        Assert.DoesNotContain(layer, pull["delta_layers"]!.AsArray().Select(d => (string)d!["digest"]!));
    }

    [Fact]
    public void A_corrupt_delta_blob_falls_back_to_downloading_that_layer()
    {
        using var s = Start("delta-corrupt-");
        using var proxy = new FaultProxy(s.Registry);
        var (_, manifest) = Artifact(s);
        var biggest = manifest["layers"]!.AsArray().OrderByDescending(l => (long)l!["size"]!).First()!;
        var layer = (string)biggest["annotations"]!["org.treechunk.delta.to-digest"]!;
        var flip = proxy.FlipResponseBytes("GET", $"/blobs/{(string)biggest["digest"]!}$", atOffset: 1000);
        var pull = PullV2(s, proxy.Host);
        Assert.True(flip.Fired >= 1);
        FellBack(pull, layer, "");
        Assert.Equal(ChangedLayers().Count - 1, pull["delta_layers"]!.AsArray().Count);
    }

    [Fact]
    public void A_delta_whose_result_is_another_layer_falls_back_to_downloading_that_layer()
    {
        using var s = Start("delta-wrong-");
        var (tag, manifest) = Artifact(s);
        // The first delta gets the second's blob and old layers but keeps naming its own layer:
        // it applies cleanly and rebuilds the second layer's tar, which is not the first's.
        var layers = manifest["layers"]!.AsArray();
        var (a, b) = (layers[0]!, layers[1]!);
        var target = (string)a["annotations"]!["org.treechunk.delta.to-digest"]!;
        a["digest"] = (string)b["digest"]!;
        a["size"] = (long)b["size"]!;
        foreach (var key in new[] { "from-digests", "from-media-types", "from-diff-ids" })
            a["annotations"]!["org.treechunk.delta." + key] = (string)b["annotations"]!["org.treechunk.delta." + key]!;
        PutManifest(s.Registry, tag, manifest.ToJsonString());
        var pull = PullV2(s, s.Registry.Host);
        FellBack(pull, target, "not its diff_id");
    }

    [Fact]
    public void A_delta_for_old_layers_the_layout_lacks_falls_back_to_downloading_that_layer()
    {
        using var s = Start("delta-lacking-");
        var (_, manifest) = Artifact(s);
        var v2Layers = pair.Manifest("v2")["layers"]!.AsArray().Select(l => (string)l!["digest"]!).ToHashSet();
        // An old layer that only a delta needs (v2 does not have it), removed from the layout.
        var entry = manifest["layers"]!.AsArray().First(l =>
            ((string)l!["annotations"]!["org.treechunk.delta.from-digests"]!).Split(',').Any(d => !v2Layers.Contains(d)))!;
        var gone = ((string)entry["annotations"]!["org.treechunk.delta.from-digests"]!).Split(',').First(d => !v2Layers.Contains(d));
        File.Delete(ZstdChunkedTests.BlobPath(s.Tmp["local"], gone));
        var pull = PullV2(s, s.Registry.Host);
        foreach (var l in manifest["layers"]!.AsArray().Where(l => ((string)l!["annotations"]!["org.treechunk.delta.from-digests"]!).Contains(gone)))
            FellBack(pull, (string)l!["annotations"]!["org.treechunk.delta.to-digest"]!, $"the layout does not have old layer {gone}");
    }

    private static void PutManifest(RegistryServer registry, string tag, string json)
    {
        using var http = new HttpClient();
        var content = new StringContent(json);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/vnd.oci.image.manifest.v1+json");
        var response = http.PutAsync($"{registry.Url}/v2/os/deb/manifests/{tag}", content).GetAwaiter().GetResult();
        Assert.True(response.IsSuccessStatusCode, response.ToString());
    }
}
