using System.Diagnostics;
using System.Text.Json.Nodes;
using Treechunk.Tests.CommandLine;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Registry;

/// <summary>
/// Our client when the network misbehaves: a <see cref="FaultProxy"/> between it and a real
/// docker-registry 2.8 cuts bodies, flips bytes and answers 503, and counts the bytes that
/// really crossed, so "resumes" means "did not send or fetch the same bytes twice".
/// </summary>
public class RegistryFaultTests
{
    private const int Chunk = 128 * 1024;

    private static (TempDir Tmp, Dictionary<string, string> Env, TestImageInfo Image) Setup(string name, int payload = 600_000)
    {
        var tmp = new TempDir(name);
        var env = RegistryClientTests.Env(tmp);
        return (tmp, env, TestImage.Write(tmp["image"], payload));
    }

    private static string Digest(string reference) =>
        (string)JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", reference))!["Digest"]!;

    [Fact]
    public void A_chunked_upload_cut_between_chunks_resumes_from_the_registrys_offset()
    {
        var (tmp, env, image) = Setup("fault-upload");
        using var _ = tmp;
        using var registry = RegistryServer.StartAnonymous();
        using var proxy = new FaultProxy(registry);
        // The layer is ~600 KB: five 128 KiB chunks. The fourth PATCH dies before its first byte.
        Assert.InRange(image.LayerSize, 4L * Chunk + 1, 5L * Chunk);
        var cut = proxy.CutRequestBody("PATCH", "/v2/os/img/blobs/uploads/", afterBytes: 0, onMatch: 4);

        var push = RegistryClientTests.Json(env, "oci", "push", "--insecure", "--upload-chunk-size", "128K", image.OciRef, $"docker://{proxy.Host}/os/img:v1");

        Assert.Equal(1, cut.Fired);
        Assert.True((int)push["resumed"]! >= 1, push.ToJsonString());
        Assert.Equal(image.ManifestDigest, (string)push["digest"]!);
        Assert.Equal(image.ManifestDigest, Digest($"docker://{registry.Host}/os/img:v1"));
        // The client asked the registry where it got to, and no byte of the layer went twice.
        Assert.True(proxy.Count("GET", "/v2/os/img/blobs/uploads/") >= 1, proxy.Describe());
        Assert.Equal(image.LayerSize, proxy.RequestBodyBytes("PATCH", "/v2/os/img/blobs/uploads/"));
        Assert.Equal(6, proxy.Count("PATCH", "/v2/os/img/blobs/uploads/")); // five chunks and the one cut
        // Without the chunk size the same push is one PUT per blob and no PATCH at all.
        using var plain = RegistryServer.StartAnonymous();
        using var plainProxy = new FaultProxy(plain);
        RegistryClientTests.Json(env, "oci", "push", "--insecure", image.OciRef, $"docker://{plainProxy.Host}/os/img:v1");
        Assert.Equal(0, plainProxy.Count("PATCH", "/blobs/uploads/"));
        Assert.Equal(image.LayerSize + image.ConfigSize, plainProxy.RequestBodyBytes("PUT", "/blobs/uploads/"));
    }

    [Fact]
    public void A_chunk_cut_half_way_starts_that_upload_again_and_still_lands()
    {
        var (tmp, env, image) = Setup("fault-halfchunk");
        using var _ = tmp;
        using var registry = RegistryServer.StartAnonymous();
        using var proxy = new FaultProxy(registry);
        // docker-registry 2.8 cancels an upload whose stored size no longer matches its signed
        // state, which is what half a chunk leaves behind: the client must start over, not fail.
        var cut = proxy.CutRequestBody("PATCH", "/v2/os/img/blobs/uploads/", afterBytes: 64 * 1024, onMatch: 2);

        var push = RegistryClientTests.Json(env, "oci", "push", "--insecure", "--upload-chunk-size", "128K", image.OciRef, $"docker://{proxy.Host}/os/img:v1");

        Assert.Equal(1, cut.Fired);
        Assert.True((int)push["resumed"]! >= 1, push.ToJsonString());
        Assert.Equal(image.ManifestDigest, Digest($"docker://{registry.Host}/os/img:v1"));
        var pulled = RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{registry.Host}/os/img:v1", $"oci:{tmp["pulled"]}");
        Assert.Equal(image.ManifestDigest, (string)pulled["digest"]!);
        Assert.Equal(File.ReadAllBytes(image.BlobPath(image.LayerDigest)), File.ReadAllBytes(Path.Join(tmp["pulled"], "blobs/sha256", image.LayerDigest[7..])));
    }

    /// <summary>
    /// docker-registry 2.8 may still report an upload's offset after a broken chunk and drop the
    /// upload a moment later, so the next chunk gets 404 (the race seen under load). The client
    /// must start a new upload then, not fail the push.
    /// </summary>
    [Fact]
    public void An_upload_dropped_after_its_offset_was_reported_starts_over()
    {
        var (tmp, env, image) = Setup("fault-dropped");
        using var _ = tmp;
        using var registry = RegistryServer.StartAnonymous();
        using var proxy = new FaultProxy(registry);
        var cut = proxy.CutRequestBody("PATCH", "/v2/os/img/blobs/uploads/", afterBytes: 0, onMatch: 2);
        var dropped = proxy.Respond("PATCH", "/v2/os/img/blobs/uploads/", 404, onMatch: 3);

        var push = RegistryClientTests.Json(env, "oci", "push", "--insecure", "--upload-chunk-size", "128K", image.OciRef, $"docker://{proxy.Host}/os/img:v1");

        Assert.Equal(1, cut.Fired);
        Assert.Equal(1, dropped.Fired);
        Assert.Equal(image.ManifestDigest, (string)push["digest"]!);
        Assert.Equal(image.ManifestDigest, Digest($"docker://{registry.Host}/os/img:v1"));
        // The layer's upload was started twice (config and layer: three POSTs in all).
        Assert.Equal(3, proxy.Count("POST", "/v2/os/img/blobs/uploads/"));
    }

    [Fact]
    public void Retry_After_is_honoured_and_retries_are_bounded()
    {
        var (tmp, env, image) = Setup("fault-503", payload: 10_000);
        using var _ = tmp;
        using var registry = RegistryServer.StartAnonymous();
        using var proxy = new FaultProxy(registry);
        var busy = proxy.Respond("PUT", "/v2/os/img/manifests/", 503, retryAfterSeconds: 1, times: 2);
        var slowDown = proxy.Respond("HEAD", "/v2/os/img/blobs/", 429, retryAfterSeconds: 1, times: 1);

        var clock = Stopwatch.StartNew();
        var push = RegistryClientTests.Json(env, "oci", "push", "--insecure", image.OciRef, $"docker://{proxy.Host}/os/img:v1");
        clock.Stop();

        Assert.Equal(2, busy.Fired);
        Assert.Equal(1, slowDown.Fired);
        Assert.Equal(3, (int)push["retried"]!);
        Assert.True(proxy.Count("PUT", "/v2/os/img/manifests/") == 3, proxy.Describe());
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(3), $"three Retry-After: 1 answers were waited out in {clock.Elapsed}");
        Assert.Equal(image.ManifestDigest, Digest($"docker://{registry.Host}/os/img:v1"));

        // A registry that never recovers: a bounded number of tries, then one line and exit 3.
        proxy.Respond("PUT", "/v2/os/img/manifests/", 503, retryAfterSeconds: 0, times: 1000);
        var before = proxy.Count("PUT", "/v2/os/img/manifests/");
        var error = RegistryClientTests.Fails(env, 3, "oci", "push", "--insecure", image.OciRef, $"docker://{proxy.Host}/os/img:v2");
        Assert.Contains("503", error);
        Assert.Equal(5, proxy.Count("PUT", "/v2/os/img/manifests/") - before); // one try and four retries
    }

    [Fact]
    public void A_flipped_byte_in_a_pulled_blob_fails_the_pull_and_keeps_nothing()
    {
        var (tmp, env, image) = Setup("fault-flip", payload: 200_000);
        using var _ = tmp;
        using var registry = RegistryServer.StartAnonymous();
        Skopeo.Check("copy", "--dest-tls-verify=false", image.OciRef, $"docker://{registry.Host}/os/img:v1");
        using var proxy = new FaultProxy(registry);
        var flip = proxy.FlipResponseBytes("GET", $"/v2/os/img/blobs/{image.LayerDigest}", atOffset: 150_000);

        var error = RegistryClientTests.Fails(env, 1, "oci", "pull", "--insecure", $"docker://{proxy.Host}/os/img:v1", $"oci:{tmp["pulled"]}");

        Assert.True(flip.Fired >= 1);
        Assert.Contains(image.LayerDigest, error);
        Assert.False(File.Exists(Path.Join(tmp["pulled"], "index.json")));
        Assert.False(File.Exists(Path.Join(tmp["pulled"], "blobs/sha256", image.LayerDigest[7..])));
        if (Directory.Exists(tmp["pulled/blobs/sha256"]))
            Assert.Empty(Directory.GetFiles(tmp["pulled/blobs/sha256"], ".tmp-*"));
        // The same pull without the fault is fine: the failure was the flipped byte.
        RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{registry.Host}/os/img:v1", $"oci:{tmp["pulled"]}");
        Assert.True(File.Exists(Path.Join(tmp["pulled"], "index.json")));
    }

    [Fact]
    public void A_download_cut_mid_blob_resumes_with_Range()
    {
        var (tmp, env, image) = Setup("fault-range", payload: 400_000);
        using var _ = tmp;
        using var registry = RegistryServer.StartAnonymous();
        Skopeo.Check("copy", "--dest-tls-verify=false", image.OciRef, $"docker://{registry.Host}/os/img:v1");
        using var proxy = new FaultProxy(registry);
        var layerPath = $"/v2/os/img/blobs/{image.LayerDigest}";
        var cut = proxy.CutResponseBody("GET", layerPath, afterBytes: 250_000);

        var pulled = RegistryClientTests.Json(env, "oci", "pull", "--insecure", $"docker://{proxy.Host}/os/img:v1", $"oci:{tmp["pulled"]}");

        Assert.Equal(1, cut.Fired);
        Assert.Equal(image.ManifestDigest, (string)pulled["digest"]!);
        Assert.True((int)pulled["resumed"]! >= 1, pulled.ToJsonString());
        var gets = proxy.Matching("GET", layerPath).ToList();
        Assert.Equal(2, gets.Count);
        Assert.Null(gets[0].Range);
        Assert.StartsWith("bytes=250000-", gets[1].Range);
        Assert.Equal(image.LayerSize, proxy.ResponseBodyBytes("GET", layerPath));
        Assert.Equal(File.ReadAllBytes(image.BlobPath(image.LayerDigest)), File.ReadAllBytes(Path.Join(tmp["pulled"], "blobs/sha256", image.LayerDigest[7..])));
    }
}
