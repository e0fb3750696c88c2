using System.Net;
using System.Text.Json.Nodes;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Registry;

/// <summary>
/// The fault proxy checked on its own, with skopeo and raw HTTP as clients: it must be invisible
/// without rules (or the fault tests would test the proxy), and each rule must do exactly what it says.
/// </summary>
public class FaultProxyTests
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, AutomaticDecompression = DecompressionMethods.None }) { Timeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public void Without_rules_the_proxy_is_invisible_and_counts_the_bytes()
    {
        using var tmp = new TempDir("proxy-plain");
        var image = TestImage.Write(tmp["image"], 300_000);
        using var registry = RegistryServer.StartAnonymous();
        using var proxy = new FaultProxy(registry);

        Skopeo.Check("copy", "--dest-tls-verify=false", image.OciRef, $"docker://{proxy.Host}/p/img:v1");
        var inspected = JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", $"docker://{proxy.Host}/p/img:v1"))!;
        Assert.Equal(image.ManifestDigest, (string)inspected["Digest"]!);
        Assert.Equal(image.ManifestDigest, (string)JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", $"docker://{registry.Host}/p/img:v1"))!["Digest"]!);
        // Every blob byte crossed once on the way up; the registry saw the proxy's requests.
        Assert.Equal(image.LayerSize + image.ConfigSize, proxy.RequestBodyBytes("PUT", "/v2/p/img/blobs/uploads/") + proxy.RequestBodyBytes("PATCH", "/v2/p/img/blobs/uploads/"));
        Assert.Equal(image.ManifestSize, proxy.RequestBodyBytes("PUT", "/v2/p/img/manifests/v1"));
        Assert.True(registry.CountBlobUploads("p/img") >= 2);

        Skopeo.Check("copy", "--src-tls-verify=false", $"docker://{proxy.Host}/p/img:v1", $"oci:{tmp["back"]}:v1");
        Assert.Equal(image.LayerSize, proxy.ResponseBodyBytes("GET", $"/v2/p/img/blobs/{image.LayerDigest}"));
        Assert.Equal(File.ReadAllBytes(image.BlobPath(image.LayerDigest)), File.ReadAllBytes(Path.Join(tmp["back"], "blobs/sha256", image.LayerDigest[7..])));
    }

    [Fact]
    public async Task Each_rule_does_what_it_says_and_only_on_its_matches()
    {
        using var tmp = new TempDir("proxy-rules");
        var image = TestImage.Write(tmp["image"], 100_000);
        using var registry = RegistryServer.StartAnonymous();
        Skopeo.Check("copy", "--dest-tls-verify=false", image.OciRef, $"docker://{registry.Host}/p/img:v1");
        using var proxy = new FaultProxy(registry);
        var blobUrl = $"http://{proxy.Host}/v2/p/img/blobs/{image.LayerDigest}";
        var original = File.ReadAllBytes(image.BlobPath(image.LayerDigest));

        // Respond: the first two matches get 503 with Retry-After, the third goes through.
        var busy = proxy.Respond("GET", "/v2/p/img/blobs/", 503, retryAfterSeconds: 7, times: 2);
        for (var i = 0; i < 2; i++)
        {
            using var r = await Http.GetAsync(blobUrl);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(7), r.Headers.RetryAfter?.Delta);
        }
        Assert.Equal(original, await Http.GetByteArrayAsync(blobUrl));
        Assert.Equal(2, busy.Fired);

        // Flip: exactly one byte differs, by one bit, at the offset asked for; then the rule is spent.
        proxy.FlipResponseBytes("GET", "/v2/p/img/blobs/", atOffset: 54_321, times: 1);
        var flipped = await Http.GetByteArrayAsync(blobUrl);
        Assert.Equal(original.Length, flipped.Length);
        var diffs = Enumerable.Range(0, original.Length).Where(i => original[i] != flipped[i]).ToList();
        Assert.Equal([54_321], diffs);
        Assert.Equal(original[54_321] ^ 1, flipped[54_321]);
        Assert.Equal(original, await Http.GetByteArrayAsync(blobUrl));

        // Cut response: the client gets exactly N bytes, then the connection ends.
        var cut = proxy.CutResponseBody("GET", "/v2/p/img/blobs/", afterBytes: 40_000);
        using (var r = await Http.GetAsync(blobUrl, HttpCompletionOption.ResponseHeadersRead))
        {
            await using var body = await r.Content.ReadAsStreamAsync();
            var got = new MemoryStream();
            await Assert.ThrowsAnyAsync<Exception>(() => body.CopyToAsync(got));
            Assert.Equal(40_000, got.Length);
            Assert.Equal(original.AsSpan(0, 40_000).ToArray(), got.ToArray());
        }
        Assert.Equal(1, cut.Fired);

        // Cut request: the registry gets N bytes of the body, the client a dropped connection.
        using (var start = await Http.PostAsync($"http://{proxy.Host}/v2/p/up/blobs/uploads/", null))
        {
            Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
            var location = start.Headers.Location!;
            Assert.Equal(proxy.Port, location.IsAbsoluteUri ? location.Port : proxy.Port);
            proxy.CutRequestBody("PATCH", "/v2/p/up/blobs/uploads/", afterBytes: 1000);
            var patch = new HttpRequestMessage(HttpMethod.Patch, new Uri(new Uri($"http://{proxy.Host}"), location)) { Content = new ByteArrayContent(original.AsSpan(0, 5000).ToArray()) };
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => Http.SendAsync(patch));
            var forwarded = proxy.Matching("PATCH", "/v2/p/up/blobs/uploads/").Single();
            Assert.Equal(1000, forwarded.RequestBodyBytes);
            Assert.Equal(-1, forwarded.Status);
        }
    }
}
