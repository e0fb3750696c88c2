using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Treechunk.Tests.Support;
using Treechunk.Tests.Support.Registry;
using Xunit.Abstractions;

namespace Treechunk.Tests.Registry;

/// <summary>Self-tests of <see cref="TokenServer"/>: docker-registry 2.8 must accept its tokens, skopeo must speak its protocol.</summary>
public class TokenServerTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(30) };

    private static async Task<(HttpStatusCode Status, JsonNode? Body)> GetToken(TokenServer tokens, string? creds, params string[] scopes)
    {
        var url = $"{tokens.Realm}?service={Uri.EscapeDataString(tokens.Service)}" + string.Concat(scopes.Select(s => "&scope=" + Uri.EscapeDataString(s)));
        var req = new HttpRequestMessage(HttpMethod.Get, url);
        if (creds != null) req.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(creds)));
        using var resp = await Http.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        return (resp.StatusCode, resp.IsSuccessStatusCode ? JsonNode.Parse(text) : null);
    }

    private static async Task<HttpResponseMessage> WithBearer(HttpMethod method, string url, string token)
    {
        var req = new HttpRequestMessage(method, url);
        req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await Http.SendAsync(req);
    }

    private static JsonNode JwtPart(string jwt, int part)
    {
        var s = jwt.Split('.')[part].Replace('-', '+').Replace('_', '/');
        return JsonNode.Parse(Convert.FromBase64String(s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=')))!;
    }

    [Fact]
    public void Skopeo_pushes_and_reads_back_with_tokens_and_wrong_or_weak_credentials_fail()
    {
        using var tmp = new TempDir();
        var image = TestImage.Write(tmp["layout"], payloadBytes: 20_000);
        using var tokens = new TokenServer();
        tokens.AddUser("alice", "s3cret");
        tokens.AddUser("reader", "r3ad", (repo, action) => action == "pull");
        using var reg = RegistryServer.StartWithToken(tokens);

        Skopeo.Check("copy", "--dest-tls-verify=false", "--dest-creds", "alice:s3cret", image.OciRef, $"docker://{reg.Host}/test/img:v1");
        var inspect = JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", "--creds", "alice:s3cret", $"docker://{reg.Host}/test/img:v1"))!;
        Assert.Equal(image.ManifestDigest, (string)inspect["Digest"]!);
        output.WriteLine(string.Join("\n", tokens.Requests.Select(r => $"{r.User} {r.Status} [{string.Join(" ", r.Scopes)}] -> [{string.Join(" ", r.Granted)}]")));
        output.WriteLine(string.Join("\n", reg.Requests));

        // skopeo asked for push+pull on the repository, and the registry saw 401 then success.
        Assert.True(tokens.TokensIssued("repository:test/img:pull,push") >= 1, string.Join(", ", tokens.TokensIssuedPerScope));
        Assert.All(tokens.Requests, r => Assert.Equal(("alice", tokens.Service, 200), (r.User, r.Service, r.Status)));
        Assert.Equal(2, reg.CountBlobUploads("test/img"));
        Assert.Contains(reg.Requests, r => r is { Method: "GET", Path: "/v2/", Status: 401 });

        // A wrong password gets a 401 from the token server, and skopeo says so.
        var err = Skopeo.Fails("inspect", "--tls-verify=false", "--creds", "alice:wrong", $"docker://{reg.Host}/test/img:v1");
        // containers/image maps the token server's 401 to "invalid username/password" and quotes our error body.
        Assert.Contains("unable to retrieve auth token: invalid username/password: unauthorized: invalid username or password", err);
        Assert.Equal(401, tokens.Requests[^1].Status);
        Assert.Equal("alice", tokens.Requests[^1].User);

        // A pull-only user reads the image but cannot push: the token carries only pull.
        inspect = JsonNode.Parse(Skopeo.Check("inspect", "--tls-verify=false", "--creds", "reader:r3ad", $"docker://{reg.Host}/test/img:v1"))!;
        Assert.Equal(image.ManifestDigest, (string)inspect["Digest"]!);
        reg.ClearRequests();
        var image2 = TestImage.Write(tmp["layout2"], payloadBytes: 5_000, seed: 2);
        err = Skopeo.Fails("copy", "--dest-tls-verify=false", "--dest-creds", "reader:r3ad", image2.OciRef, $"docker://{reg.Host}/test/img:v2");
        output.WriteLine(err);
        Assert.Matches("(?i)denied|unauthorized|insufficient", err);
        output.WriteLine(string.Join("\n", tokens.Requests.Select(r => $"{r.User} {r.Status} [{string.Join(" ", r.Scopes)}] -> [{string.Join(" ", r.Granted)}]")));
        var pushRequest = tokens.Requests.Last(r => r.User == "reader");
        Assert.Contains("repository:test/img:pull,push", pushRequest.Scopes);
        Assert.Equal(["pull"], pushRequest.Granted.Single(g => g.Name == "test/img").Actions);
        Assert.Equal(0, reg.CountBlobUploads());
        Assert.Contains(reg.Requests, r => r.Method is "HEAD" or "POST" && r.Status == 401);
    }

    [Theory]
    [InlineData(TokenKeyType.EcdsaP256, TokenKeyHeader.X5c, "ES256")]
    [InlineData(TokenKeyType.EcdsaP256, TokenKeyHeader.Kid, "ES256")]
    [InlineData(TokenKeyType.Rsa2048, TokenKeyHeader.X5c, "RS256")]
    [InlineData(TokenKeyType.Rsa2048, TokenKeyHeader.Kid, "RS256")]
    public async Task Registry_accepts_each_key_type_and_header_and_enforces_the_granted_actions(TokenKeyType keyType, TokenKeyHeader keyHeader, string alg)
    {
        using var tokens = new TokenServer(keyType, keyHeader);
        tokens.AddUser("alice", "s3cret");
        tokens.AddUser("reader", "r3ad", (_, action) => action == "pull");
        using var reg = RegistryServer.StartWithToken(tokens);

        var (status, body) = await GetToken(tokens, "alice:s3cret", "repository:test/img:pull,push");
        Assert.Equal(HttpStatusCode.OK, status);
        var jwt = (string)body!["token"]!;
        Assert.Equal(jwt, (string)body["access_token"]!);
        Assert.Equal(300, (int)body["expires_in"]!);
        Assert.True(DateTimeOffset.Parse((string)body["issued_at"]!) > DateTimeOffset.UtcNow.AddMinutes(-1));
        var header = JwtPart(jwt, 0);
        Assert.Equal(alg, (string)header["alg"]!);
        if (keyHeader == TokenKeyHeader.Kid) Assert.Equal(tokens.KeyId, (string)header["kid"]!);
        else Assert.Equal(Convert.ToBase64String(tokens.Certificate.RawData), (string)header["x5c"]![0]!);
        var claims = JwtPart(jwt, 1);
        Assert.Equal(tokens.Service, (string)claims["aud"]!);
        Assert.Equal("alice", (string)claims["sub"]!);
        Assert.Equal("""[{"type":"repository","name":"test/img","actions":["pull","push"]}]""", claims["access"]!.ToJsonString());

        // Push scope: the registry opens an upload session.
        using (var resp = await WithBearer(HttpMethod.Post, $"{reg.Url}/v2/test/img/blobs/uploads/", jwt))
            Assert.Equal(HttpStatusCode.Accepted, resp.StatusCode);

        // Pull only: the same request is refused for insufficient scope, while a read is allowed.
        (status, body) = await GetToken(tokens, "reader:r3ad", "repository:test/img:pull,push");
        Assert.Equal(HttpStatusCode.OK, status);
        var readerJwt = (string)body!["token"]!;
        using (var resp = await WithBearer(HttpMethod.Post, $"{reg.Url}/v2/test/img/blobs/uploads/", readerJwt))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
            Assert.Contains("error=\"insufficient_scope\"", resp.Headers.WwwAuthenticate.ToString());
            Assert.Contains("scope=\"repository:test/img:", resp.Headers.WwwAuthenticate.ToString());
        }
        using (var resp = await WithBearer(HttpMethod.Get, $"{reg.Url}/v2/test/img/tags/list", readerJwt))
            Assert.Equal(HttpStatusCode.NotFound, resp.StatusCode); // authorized; the repository just has no tags yet

        // A token the registry's trusted certificate did not sign is refused as invalid.
        using var stranger = new TokenServer(keyType, keyHeader);
        var forged = stranger.Issue("alice", [new TokenAccess("repository", "test/img", ["pull", "push"])]);
        using (var resp = await WithBearer(HttpMethod.Get, $"{reg.Url}/v2/", forged.Jwt))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
            Assert.Contains("error=\"invalid_token\"", resp.Headers.WwwAuthenticate.ToString());
        }
        var expected = keyHeader == TokenKeyHeader.Kid ? "token signed by untrusted key with ID" : "unable to verify certificate chain";
        Assert.Contains(expected, reg.StderrOnceItSays(expected));
    }

    [Fact]
    public async Task A_short_lived_token_stops_working_at_the_registry_when_expires_in_says()
    {
        using var tokens = new TokenServer { ExpiresIn = TimeSpan.FromSeconds(1) };
        tokens.AddUser("alice", "s3cret");
        using var reg = RegistryServer.StartWithToken(tokens);

        var fetched = DateTime.UtcNow;
        var (status, body) = await GetToken(tokens, "alice:s3cret", "repository:test/img:pull");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(1, (int)body!["expires_in"]!);
        var jwt = (string)body["token"]!;
        using (var resp = await WithBearer(HttpMethod.Get, $"{reg.Url}/v2/", jwt))
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);

        // exp is whole seconds rounded up, so the token lives between 1 and 2 s.
        var wait = fetched.AddSeconds(2.3) - DateTime.UtcNow;
        if (wait > TimeSpan.Zero) await Task.Delay(wait);
        using (var resp = await WithBearer(HttpMethod.Get, $"{reg.Url}/v2/", jwt))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, resp.StatusCode);
            Assert.Contains("error=\"invalid_token\"", resp.Headers.WwwAuthenticate.ToString());
        }
        Assert.Contains("token not to be used after", reg.StderrOnceItSays("token not to be used after"));

        // A fresh token works again, and each fetch counted for its scope.
        (_, body) = await GetToken(tokens, "alice:s3cret", "repository:test/img:pull");
        using (var resp = await WithBearer(HttpMethod.Get, $"{reg.Url}/v2/", (string)body!["token"]!))
            Assert.Equal(HttpStatusCode.OK, resp.StatusCode);
        Assert.Equal(2, tokens.TokensIssued("repository:test/img:pull"));
        Assert.Equal(2, tokens.TokensIssued());
    }

    [Fact]
    public async Task Anonymous_requests_are_refused_unless_a_policy_is_set_and_then_get_only_what_it_allows()
    {
        using var tokens = new TokenServer();
        var (status, _) = await GetToken(tokens, null, "repository:test/img:pull");
        Assert.Equal(HttpStatusCode.Unauthorized, status);

        tokens.Anonymous = (repo, action) => repo.StartsWith("public/") && action == "pull";
        (status, var body) = await GetToken(tokens, null, "repository:public/img:pull,push", "repository:private/img:pull");
        Assert.Equal(HttpStatusCode.OK, status);
        var claims = JwtPart((string)body!["token"]!, 1);
        Assert.Equal("""[{"type":"repository","name":"public/img","actions":["pull"]}]""", claims["access"]!.ToJsonString());
        Assert.Equal("", (string)claims["sub"]!);
        Assert.Equal(2, tokens.Requests.Count);
        Assert.Equal(1, tokens.TokensIssued("repository:private/img:pull"));

        // A request for another service is a client bug: 400.
        using var resp = await Http.GetAsync($"{tokens.Realm}?service=elsewhere&scope=repository:public/img:pull");
        Assert.Equal(HttpStatusCode.BadRequest, resp.StatusCode);
    }

    [Fact]
    public void Libtrust_key_id_has_twelve_groups_of_four_base32_characters()
    {
        using var tokens = new TokenServer();
        Assert.Matches("^([A-Z2-7]{4}:){11}[A-Z2-7]{4}$", tokens.KeyId);
        // The kid theory above proves docker-registry computes the same ID; here: stable and key-bound.
        Assert.Equal(tokens.KeyId, TokenServer.LibtrustKeyId(tokens.Certificate.PublicKey.ExportSubjectPublicKeyInfo()));
        using var other = new TokenServer();
        Assert.NotEqual(tokens.KeyId, other.KeyId);
    }
}
