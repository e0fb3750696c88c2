using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;

namespace Treechunk.Tests.Support.Registry;

public enum TokenKeyType { EcdsaP256, Rsa2048 }

/// <summary>How a token names its signing key: the certificate itself (x5c) or a libtrust key ID (kid).</summary>
public enum TokenKeyHeader { X5c, Kid }

/// <summary>One entry of a token's "access" claim.</summary>
public sealed record TokenAccess(string Type, string Name, IReadOnlyList<string> Actions)
{
    public override string ToString() => $"{Type}:{Name}:{string.Join(",", Actions)}";
}

/// <summary>A token the server made, with when docker-registry stops accepting it.</summary>
public sealed record IssuedToken(string Jwt, DateTimeOffset IssuedAt, DateTimeOffset ValidUntil, IReadOnlyList<TokenAccess> Access);

/// <summary>One GET /token as the server saw and answered it.</summary>
public sealed record TokenRequest(string? User, string? Service, IReadOnlyList<string> Scopes, int Status, IReadOnlyList<TokenAccess> Granted);

/// <summary>
/// The Docker token protocol's authorization server, in-process, for registries started with
/// <see cref="RegistryServer.StartWithToken"/>. Small and hand-written (on <see cref="HttpWire"/>'s
/// framing, no ASP.NET) so the tests own every knob: users and what each may do per repository,
/// token lifetime, signing key type and how the key is named. It follows what
/// distribution 2.8's registry/auth/token checks: iss = the configured issuer, aud = the service
/// as a JSON string (an array does not parse in 2.8), exp/nbf with 60 s of leeway, a signature
/// by a key found through x5c (chain verified against rootcertbundle) or kid (libtrust
/// fingerprint of a rootcertbundle key), ES256 or RS256; the access claim must contain each action
/// the request needs. Like real token servers it never refuses a scope: it grants what the policy
/// allows, and the registry answers 401 insufficient_scope for the rest.
/// </summary>
public sealed class TokenServer : IDisposable
{
    /// <summary>docker-registry accepts a token until exp + this (registry/auth/token Leeway).</summary>
    public static readonly TimeSpan RegistryLeeway = TimeSpan.FromSeconds(60);

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly TempDir _dir = new("token-");
    private readonly AsymmetricAlgorithm _key;
    private readonly TokenKeyType _keyType;
    private readonly TokenKeyHeader _keyHeader;
    private readonly object _lock = new();
    private readonly Dictionary<string, (string Password, Func<string, string, bool>? Allow)> _users = [];
    private readonly List<TokenRequest> _requests = [];
    private readonly Dictionary<string, int> _perScope = [];
    private readonly List<TcpClient> _connections = [];
    private readonly Task _acceptLoop;

    public int Port { get; }
    /// <summary>The realm URL for the registry's auth.token.realm.</summary>
    public string Realm => $"http://127.0.0.1:{Port}/token";
    public string Service { get; }
    public string Issuer { get; }
    /// <summary>The self-signed signing certificate (public part), as PEM, for auth.token.rootcertbundle.</summary>
    public string CertificatePemPath { get; }
    public X509Certificate2 Certificate { get; }
    /// <summary>The libtrust key ID of the signing key, as docker-registry computes it.</summary>
    public string KeyId { get; }

    /// <summary>The lifetime announced in expires_in, and (see <see cref="CompensateRegistryLeeway"/>) enforced by the registry.</summary>
    public TimeSpan ExpiresIn { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// When true (the default) the exp claim is moved 60 s earlier so that docker-registry, which
    /// allows 60 s of leeway past exp, stops accepting the token when expires_in says. Without it a
    /// 2 s token would keep working for 62 s and no refresh test could see an expired token.
    /// </summary>
    public bool CompensateRegistryLeeway { get; set; } = true;

    /// <summary>
    /// What requests without credentials may do, per (repository, action); null (the default)
    /// answers them 401, as a private registry's token server does.
    /// </summary>
    public Func<string, string, bool>? Anonymous { get; set; }

    public TokenServer(TokenKeyType keyType = TokenKeyType.EcdsaP256, TokenKeyHeader keyHeader = TokenKeyHeader.X5c,
        string service = "treechunk-test-registry", string issuer = "treechunk-test-token-server")
    {
        _keyType = keyType;
        _keyHeader = keyHeader;
        Service = service;
        Issuer = issuer;
        var subject = new X500DistinguishedName("CN=treechunk test token signer");
        CertificateRequest req;
        if (keyType == TokenKeyType.EcdsaP256)
        {
            var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            _key = ec;
            req = new CertificateRequest(subject, ec, HashAlgorithmName.SHA256);
        }
        else
        {
            var rsa = RSA.Create(2048);
            _key = rsa;
            req = new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, critical: true));
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, 0, critical: true));
        var now = DateTimeOffset.UtcNow;
        Certificate = req.CreateSelfSigned(now.AddDays(-1), now.AddDays(2));
        CertificatePemPath = _dir["token-signer.pem"];
        File.WriteAllText(CertificatePemPath, Certificate.ExportCertificatePem() + "\n");
        KeyId = LibtrustKeyId(Certificate.PublicKey.ExportSubjectPublicKeyInfo());

        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    /// <summary>Adds a user; <paramref name="allow"/> (repository, action) limits what it may do, null = everything.</summary>
    public void AddUser(string name, string password, Func<string, string, bool>? allow = null)
    {
        lock (_lock) _users[name] = (password, allow);
    }

    public IReadOnlyList<TokenRequest> Requests { get { lock (_lock) return [.. _requests]; } }

    /// <summary>Tokens issued per requested scope string (e.g. "repository:test/img:pull,push").</summary>
    public IReadOnlyDictionary<string, int> TokensIssuedPerScope { get { lock (_lock) return new Dictionary<string, int>(_perScope); } }

    /// <summary>Tokens issued whose request named <paramref name="scope"/>; all tokens issued when null.</summary>
    public int TokensIssued(string? scope = null)
    {
        lock (_lock)
            return scope == null ? _requests.Count(r => r.Status == 200) : _perScope.GetValueOrDefault(scope);
    }

    /// <summary>
    /// libtrust's key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits, base32,
    /// in twelve groups of four joined by ':' (libtrust util.go keyIDFromCryptoKey).
    /// </summary>
    public static string LibtrustKeyId(byte[] subjectPublicKeyInfo)
    {
        var bytes = SHA256.HashData(subjectPublicKeyInfo).AsSpan(0, 30);
        const string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        var sb = new StringBuilder();
        int buffer = 0, bits = 0;
        foreach (var b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                sb.Append(alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }
        var s = sb.ToString(); // 240 bits = 48 characters exactly, no padding
        return string.Join(":", Enumerable.Range(0, s.Length / 4).Select(i => s.Substring(i * 4, 4)));
    }

    private static string B64Url(ReadOnlySpan<byte> data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Makes and signs a token for <paramref name="subject"/> with exactly <paramref name="access"/>.</summary>
    public IssuedToken Issue(string? subject, IReadOnlyList<TokenAccess> access)
    {
        var now = DateTimeOffset.UtcNow;
        var iat = now.ToUnixTimeSeconds();
        // exp is whole seconds: round up so the token lives at least ExpiresIn.
        var end = (long)Math.Ceiling((now + ExpiresIn).ToUnixTimeMilliseconds() / 1000.0);
        var exp = CompensateRegistryLeeway ? end - (long)RegistryLeeway.TotalSeconds : end;
        var header = new JsonObject { ["typ"] = "JWT", ["alg"] = _keyType == TokenKeyType.EcdsaP256 ? "ES256" : "RS256" };
        if (_keyHeader == TokenKeyHeader.X5c) header["x5c"] = new JsonArray(Convert.ToBase64String(Certificate.RawData));
        else header["kid"] = KeyId;
        var claims = new JsonObject
        {
            ["iss"] = Issuer,
            ["sub"] = subject ?? "",
            ["aud"] = Service,
            ["exp"] = exp,
            ["nbf"] = iat,
            ["iat"] = iat,
            ["jti"] = Guid.NewGuid().ToString("N"),
            ["access"] = new JsonArray(access.Select(a => (JsonNode)new JsonObject
            {
                ["type"] = a.Type,
                ["name"] = a.Name,
                ["actions"] = new JsonArray(a.Actions.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray()),
            }).ToArray()),
        };
        var signingInput = B64Url(Encoding.UTF8.GetBytes(header.ToJsonString())) + "." + B64Url(Encoding.UTF8.GetBytes(claims.ToJsonString()));
        var data = Encoding.ASCII.GetBytes(signingInput);
        var signature = _key is ECDsa ec
            ? ec.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation) // r||s, as JWS wants
            : ((RSA)_key).SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var validUntil = DateTimeOffset.FromUnixTimeSeconds(exp) + RegistryLeeway;
        return new IssuedToken(signingInput + "." + B64Url(signature), DateTimeOffset.FromUnixTimeSeconds(iat), validUntil, access);
    }

    /// <summary>Parses "type:name:a,b" (the name may hold ':'); null when malformed.</summary>
    private static (string Type, string Name, string[] Actions)? ParseScope(string scope)
    {
        var first = scope.IndexOf(':');
        var last = scope.LastIndexOf(':');
        if (first <= 0 || last == first) return null;
        return (scope[..first], scope[(first + 1)..last], scope[(last + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries));
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            lock (_lock) _connections.Add(client);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        var ct = _stop.Token;
        try
        {
            using (client)
            {
                var stream = client.GetStream();
                var reader = new WireReader(stream);
                while (!ct.IsCancellationRequested)
                {
                    var req = await reader.ReadHeadAsync(ct);
                    if (req == null) return;
                    await reader.ReadBodyAsync(Framing.OfRequest(req), ct);
                    var (status, body, extra) = Answer(req);
                    var head = HttpHead.Response(status, status switch { 200 => "OK", 400 => "Bad Request", 401 => "Unauthorized", _ => "Not Found" },
                        ("Content-Type", "application/json"), ("Content-Length", body.Length.ToString(CultureInfo.InvariantCulture)));
                    foreach (var (k, v) in extra) head.Headers.Add(new(k, v));
                    await stream.WriteAsync(head.ToBytes(), ct);
                    await stream.WriteAsync(body, ct);
                    if (req.HasToken("Connection", "close")) return;
                }
            }
        }
        catch (Exception) { /* client went away or server stopping */ }
        finally { lock (_lock) _connections.Remove(client); }
    }

    private static byte[] Error(string code, string message) =>
        Encoding.UTF8.GetBytes(new JsonObject { ["errors"] = new JsonArray(new JsonObject { ["code"] = code, ["message"] = message }) }.ToJsonString());

    private (int Status, byte[] Body, (string, string)[] Headers) Answer(HttpHead req)
    {
        if (req.Method != "GET" || req.Path != "/token") return (404, Error("NOT_FOUND", "only GET /token is served"), []);
        var query = req.Query.Split('&', StringSplitOptions.RemoveEmptyEntries)
            .Select(p => p.Split('=', 2))
            .Select(p => (Key: Uri.UnescapeDataString(p[0].Replace('+', ' ')), Value: p.Length > 1 ? Uri.UnescapeDataString(p[1].Replace('+', ' ')) : ""))
            .ToList();
        var service = query.FirstOrDefault(p => p.Key == "service").Value;
        var scopes = query.Where(p => p.Key == "scope").SelectMany(p => p.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();

        string? user = null;
        Func<string, string, bool>? allow;
        var fullAccess = false;
        var authorization = req.Get("Authorization");
        if (authorization != null && authorization.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            string decoded;
            try { decoded = Encoding.UTF8.GetString(Convert.FromBase64String(authorization[6..].Trim())); }
            catch (FormatException) { decoded = ""; }
            var colon = decoded.IndexOf(':');
            user = colon < 0 ? decoded : decoded[..colon];
            var password = colon < 0 ? "" : decoded[(colon + 1)..];
            (string Password, Func<string, string, bool>? Allow) entry;
            bool known;
            lock (_lock) known = _users.TryGetValue(user, out entry);
            if (!known || entry.Password != password)
                return Refuse(user, service, scopes, 401, Error("UNAUTHORIZED", "invalid username or password"));
            fullAccess = entry.Allow == null;
            allow = entry.Allow ?? ((_, _) => true);
        }
        else
        {
            if (Anonymous == null) return Refuse(null, service, scopes, 401, Error("UNAUTHORIZED", "credentials required"));
            allow = Anonymous;
        }
        if (service != null && service != Service)
            return Refuse(user, service, scopes, 400, Error("INVALID_REQUEST", $"unknown service '{service}'"));

        // One access entry per resource, actions merged: skopeo asks for the same scope twice at times.
        var granted = new List<TokenAccess>();
        foreach (var scope in scopes)
        {
            if (ParseScope(scope) is not { } s) continue;
            var actions = s.Actions.Where(a => s.Type == "repository" ? allow(s.Name, a) : fullAccess).ToList();
            if (actions.Count == 0) continue;
            var i = granted.FindIndex(g => g.Type == s.Type && g.Name == s.Name);
            if (i < 0) granted.Add(new TokenAccess(s.Type, s.Name, actions.Distinct().ToList()));
            else granted[i] = granted[i] with { Actions = granted[i].Actions.Concat(actions).Distinct().ToList() };
        }
        var token = Issue(user, granted);
        lock (_lock)
        {
            _requests.Add(new TokenRequest(user, service, scopes, 200, granted));
            foreach (var scope in scopes.Distinct()) _perScope[scope] = _perScope.GetValueOrDefault(scope) + 1;
        }
        var body = new JsonObject
        {
            ["token"] = token.Jwt,
            ["access_token"] = token.Jwt,
            ["expires_in"] = (int)Math.Ceiling(ExpiresIn.TotalSeconds),
            ["issued_at"] = token.IssuedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        };
        return (200, Encoding.UTF8.GetBytes(body.ToJsonString()), []);
    }

    private (int, byte[], (string, string)[]) Refuse(string? user, string? service, List<string> scopes, int status, byte[] body)
    {
        lock (_lock) _requests.Add(new TokenRequest(user, service, scopes, status, []));
        return (status, body, status == 401 ? [("WWW-Authenticate", "Basic realm=\"treechunk-test-token-server\"")] : []);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_lock) foreach (var c in _connections) c.Dispose();
        try { _acceptLoop.Wait(TimeSpan.FromSeconds(2)); } catch (AggregateException) { }
        _key.Dispose();
        Certificate.Dispose();
        _dir.Dispose();
    }
}
