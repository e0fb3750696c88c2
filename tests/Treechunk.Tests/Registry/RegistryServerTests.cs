using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Treechunk.Tests.Support;
using Xunit.Abstractions;
using Treechunk.Tests.Support.Registry;

namespace Treechunk.Tests.Registry;

/// <summary>Self-tests of <see cref="RegistryServer"/> against the real docker-registry and skopeo.</summary>
public class RegistryServerTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public void Skopeo_push_lands_in_the_registry_and_the_log_shows_each_blob_upload_once()
    {
        using var tmp = new TempDir();
        var image = TestImage.Write(tmp["layout"]);
        using var reg = RegistryServer.StartAnonymous();

        Skopeo.Check("copy", "--dest-tls-verify=false", image.OciRef, $"docker://{reg.Host}/test/img:v1");

        var inspect = JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", $"docker://{reg.Host}/test/img:v1"))!;
        Assert.Equal(image.ManifestDigest, (string)inspect["Digest"]!);
        var raw = Skopeo.Check("inspect", "--raw", "--tls-verify=false", $"docker://{reg.Host}/test/img:v1");
        Assert.Equal(image.ManifestDigest, "sha256:" + Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(raw))));

        // The blobs are in the registry's own storage, byte for byte.
        foreach (var digest in new[] { image.LayerDigest, image.ConfigDigest })
        {
            var hex = digest["sha256:".Length..];
            var stored = Path.Join(reg.StorageDir, "docker/registry/v2/blobs/sha256", hex[..2], hex, "data");
            Assert.Equal(File.ReadAllBytes(image.BlobPath(digest)), File.ReadAllBytes(stored));
        }

        var log = reg.Requests;
        output.WriteLine(string.Join("\n", log));
        Assert.Equal(2, reg.CountBlobUploads("test/img"));
        Assert.Contains(log, r => r is { Method: "PUT", Path: "/v2/test/img/manifests/v1", Status: 201 });
        Assert.Contains(log, r => r.Method == "HEAD" && r.Path == $"/v2/test/img/blobs/{image.LayerDigest}" && r.Status == 404);
        Assert.Contains(log, r => r.Method == "PATCH" && r.Path.StartsWith("/v2/test/img/blobs/uploads/") && r.Status == 202);
        Assert.Contains(log, r => r.Method == "GET" && r.Path == "/v2/test/img/manifests/v1" && r.Status == 200);
        Assert.Contains("skopeo", log.First(r => r.Method == "PATCH").UserAgent, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, reg.CountBlobGets(image.LayerDigest));

        // A second push of the same image: skopeo HEADs the blobs, finds them, uploads nothing.
        reg.ClearRequests();
        Skopeo.Check("copy", "--dest-tls-verify=false", image.OciRef, $"docker://{reg.Host}/test/img:v1");
        var again = reg.Requests;
        output.WriteLine("--- second push\n" + string.Join("\n", again));
        Assert.Equal(0, reg.CountBlobUploadRequests());
        Assert.Equal(0, reg.CountBlobUploads());
        Assert.Contains(again, r => r.Method == "HEAD" && r.Path == $"/v2/test/img/blobs/{image.LayerDigest}" && r.Status == 200);
        Assert.DoesNotContain(again, r => r.Query.Contains("treechunk-log-sync"));

        // Pulling back counts the blob GETs.
        reg.ClearRequests();
        Skopeo.Check("copy", "--src-tls-verify=false", $"docker://{reg.Host}/test/img:v1", $"oci:{tmp["pulled"]}:v1");
        Assert.Equal(1, reg.CountBlobGets(image.LayerDigest));
        Assert.Equal(1, reg.CountBlobGets(image.ConfigDigest));
        Assert.Equal(image.LayerSize, reg.Requests.Single(r => r.Method == "GET" && r.Path.EndsWith(image.LayerDigest)).ResponseBytes);
    }

    [Fact]
    public async Task Htpasswd_registry_wants_the_right_password()
    {
        using var tmp = new TempDir();
        var image = TestImage.Write(tmp["layout"], payloadBytes: 10_000);
        using var reg = RegistryServer.StartWithHtpasswd("alice", "s3cret", ("bob", "other"));

        using (var resp = await Http.GetAsync($"{reg.Url}/v2/"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
            Assert.Equal("Basic", resp.Headers.WwwAuthenticate.Single().Scheme);
        }
        var req = new HttpRequestMessage(HttpMethod.Get, $"{reg.Url}/v2/");
        req.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String("bob:other"u8.ToArray()));
        using (var resp = await Http.SendAsync(req)) Assert.Equal(HttpStatusCode.OK, resp.StatusCode);

        Skopeo.Check("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", image.OciRef, $"docker://{reg.Host}/test/img:v1");
        var inspect = JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", "--creds", "alice:s3cret", $"docker://{reg.Host}/test/img:v1"))!;
        Assert.Equal(image.ManifestDigest, (string)inspect["Digest"]!);

        reg.ClearRequests();
        var err = Skopeo.Fails("inspect", "--tls-verify=false", "--creds", "alice:wrong", $"docker://{reg.Host}/test/img:v1");
        Assert.Contains("unauthorized", err, StringComparison.OrdinalIgnoreCase);
        Assert.NotEmpty(reg.Requests);
        Assert.All(reg.Requests.Where(r => r.Path != "/v2/" || r.Status != 200), r => Assert.Equal(401, r.Status));
    }

    [Fact]
    public void Dispose_stops_the_registry_and_removes_its_storage()
    {
        var reg = RegistryServer.StartAnonymous();
        var (port, storage) = (reg.Port, reg.StorageDir);
        Assert.True(Directory.Exists(storage));
        Assert.Contains("delete:\n    enabled: true", reg.ConfigYaml);
        Assert.Contains($"addr: 127.0.0.1:{port}", reg.ConfigYaml);
        reg.Dispose();
        Assert.False(Directory.Exists(storage));
        using var probe = new TcpClient();
        Assert.ThrowsAny<SocketException>(() => probe.Connect(IPAddress.Loopback, port));
    }

    [Fact]
    public void A_registry_that_cannot_start_fails_with_its_own_error_message()
    {
        var e = Assert.Throws<InvalidOperationException>(() => RegistryServer.StartWithAuthYaml("auth:\n  token:\n    realm: http://127.0.0.1:1/token\n"));
        Assert.Contains("docker-registry exited", e.Message);
        Assert.Contains("token auth requires a valid option string", e.Message); // the registry's own words, from its stderr
    }
}
