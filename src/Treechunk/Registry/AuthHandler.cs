using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Treechunk.Registry;

/// <summary>
/// Registry authentication as a <see cref="DelegatingHandler"/>: a request goes out with the
/// token or Basic credentials already known for its scope; a 401 names the scheme
/// (<c>WWW-Authenticate: Bearer realm=..,service=..,scope=..</c> or <c>Basic</c>), the token is
/// fetched from the realm (with Basic credentials when there are any, anonymously otherwise),
/// kept per scope until it expires, and the request is sent once more. A second refusal is
/// "authentication failed", never a retry loop. Secrets appear in headers only.
/// </summary>
public sealed partial class AuthHandler : DelegatingHandler
{
    /// <summary>Further scopes a request needs (a cross-repository mount reads the source repository).</summary>
    public static readonly HttpRequestOptionsKey<string[]> ExtraScopes = new("treechunk.extra-scopes");

    private readonly Func<string, string?, RegistryCredential?> _credentials;
    private readonly HttpClient _tokenClient;
    private readonly Dictionary<string, Token> _tokens = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Challenge> _challenges = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, SemaphoreSlim> _fetching = new(StringComparer.Ordinal);

    private sealed record Token(string Host, string Value, HashSet<string> Scopes, DateTimeOffset Expires);
    private sealed record Challenge(string Scheme, string? Realm, string? Service);

    /// <param name="credentials">Credentials for (host, repository), or null for anonymous access.</param>
    /// <param name="tokenClient">Talks to token realms (no auth handler of its own; retries like the rest).</param>
    public AuthHandler(HttpMessageHandler inner, Func<string, string?, RegistryCredential?> credentials, HttpClient tokenClient) : base(inner)
    {
        _credentials = credentials;
        _tokenClient = tokenClient;
    }

    /// <summary>Tokens fetched so far (for --json summaries and tests).</summary>
    public int TokensFetched { get; private set; }

    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken) =>
        SendAsync(request, cancellationToken).GetAwaiter().GetResult();

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var host = request.RequestUri!.Authority;
        var (repository, scopes) = ScopesOf(request);
        Authorize(request, host, repository, scopes);
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.Unauthorized) return response;

        var challenge = ParseChallenge(response.Headers.WwwAuthenticate);
        if (challenge == null) return response;
        lock (_lock) _challenges[host] = challenge;
        var credential = _credentials(host, repository);
        if (challenge.Scheme == "basic")
        {
            if (credential == null)
            {
                response.Dispose();
                throw new TreechunkException($"{host}: authentication required (give --username/--password, or log in with treechunk oci registry auth)");
            }
        }
        else
        {
            var wanted = new HashSet<string>(scopes, StringComparer.Ordinal);
            foreach (var s in ChallengeScopes(response.Headers.WwwAuthenticate)) wanted.Add(s);
            // Parallel requests that all met the challenge fetch one token, not one each.
            var gate = _fetching.GetOrAdd(host + " " + string.Join(' ', wanted.Order(StringComparer.Ordinal)), _ => new SemaphoreSlim(1, 1));
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (!HasToken(host, wanted)) await FetchToken(host, challenge, wanted, credential, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                gate.Release();
            }
        }
        response.Dispose();
        var again = Clone(request);
        Authorize(again, host, repository, scopes);
        var second = await base.SendAsync(again, cancellationToken).ConfigureAwait(false);
        if (second.StatusCode == HttpStatusCode.Unauthorized)
        {
            var insufficient = second.Headers.WwwAuthenticate.Any(h => Params(h.Parameter ?? "").GetValueOrDefault("error") == "insufficient_scope");
            second.Dispose();
            if (insufficient)
                throw new TreechunkException($"{host}: access denied: {(credential != null ? credential.Username : "anonymous access")} may not {(scopes.Any(x => x.EndsWith(",push")) ? "push to" : "pull from")} {repository}");
            throw new TreechunkException(credential != null
                ? $"{host}: authentication failed for {credential.Username} (credentials from {credential.From})"
                : $"{host}: authentication required (give --username/--password, or log in with treechunk oci registry auth)");
        }
        return second;
    }

    /// <summary>
    /// The Authorization header a GET of <paramref name="uri"/> would carry now (a token already
    /// fetched for its scope, or Basic credentials), for a service that fetches from the
    /// registry on our behalf (Clair). Null when none is known or needed.
    /// </summary>
    public AuthenticationHeaderValue? CurrentAuthorization(Uri uri)
    {
        using var probe = new HttpRequestMessage(HttpMethod.Get, uri);
        var (repository, scopes) = ScopesOf(probe);
        Authorize(probe, uri.Authority, repository, scopes);
        return probe.Headers.Authorization;
    }

    private void Authorize(HttpRequestMessage request, string host, string? repository, IReadOnlyList<string> scopes)
    {
        Challenge? challenge;
        lock (_lock) _challenges.TryGetValue(host, out challenge);
        if (challenge == null) return;
        if (challenge.Scheme == "basic")
        {
            if (_credentials(host, repository) is { } c)
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(c.Username + ":" + c.Secret)));
            return;
        }
        lock (_lock)
        {
            var now = DateTimeOffset.UtcNow;
            var token = _tokens.Values.FirstOrDefault(t => t.Host == host && t.Expires > now && scopes.All(t.Scopes.Contains));
            if (token != null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token.Value);
        }
    }

    private bool HasToken(string host, IReadOnlyCollection<string> scopes)
    {
        var now = DateTimeOffset.UtcNow;
        lock (_lock) return _tokens.Values.Any(t => t.Host == host && t.Expires > now && scopes.All(t.Scopes.Contains));
    }

    private async Task FetchToken(string host, Challenge challenge, HashSet<string> scopes, RegistryCredential? credential, CancellationToken ct)
    {
        if (challenge.Realm == null) throw new TreechunkException($"{host}: the registry asks for a Bearer token but names no realm");
        if (!Uri.TryCreate(challenge.Realm, UriKind.Absolute, out var realm) || realm.Scheme is not ("http" or "https"))
            throw new TreechunkException($"{host}: the registry's token realm '{challenge.Realm}' is not an http(s) URL");
        var query = new List<string>();
        if (challenge.Service != null) query.Add("service=" + Uri.EscapeDataString(challenge.Service));
        foreach (var s in scopes.Order(StringComparer.Ordinal)) query.Add("scope=" + Uri.EscapeDataString(s));
        HttpRequestMessage request;
        if (credential is { IsIdentityToken: true })
        {
            // docker's identity token is an OAuth2 refresh token, exchanged at the realm by POST.
            var form = new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = credential.Secret, ["client_id"] = "treechunk" };
            if (challenge.Service != null) form["service"] = challenge.Service;
            if (scopes.Count > 0) form["scope"] = string.Join(' ', scopes.Order(StringComparer.Ordinal));
            request = new HttpRequestMessage(HttpMethod.Post, realm) { Content = new FormUrlEncodedContent(form) };
        }
        else
        {
            var builder = new UriBuilder(realm);
            builder.Query = string.Join('&', (realm.Query.TrimStart('?') is { Length: > 0 } q ? [q] : Array.Empty<string>()).Concat(query));
            request = new HttpRequestMessage(HttpMethod.Get, builder.Uri);
            if (credential != null)
                request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(credential.Username + ":" + credential.Secret)));
        }
        HttpResponseMessage response;
        try
        {
            response = await _tokenClient.SendAsync(request, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new TreechunkException($"{host}: cannot reach the token service {realm.GetLeftPart(UriPartial.Path)}: {e.Message}", ExitCodes.EnvironmentError, e);
        }
        using (response)
        {
            if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                throw new TreechunkException(credential != null
                    ? $"{host}: authentication failed for {credential.Username} (credentials from {credential.From})"
                    : $"{host}: authentication required (give --username/--password, or log in with treechunk oci registry auth)");
            if (!response.IsSuccessStatusCode)
                throw new TreechunkException($"{host}: the token service answered {(int)response.StatusCode} {response.ReasonPhrase}", ExitCodes.EnvironmentError);
            var body = await response.Content.ReadAsByteArrayAsync(ct).ConfigureAwait(false);
            string? value = null;
            int expiresIn = 60;
            DateTimeOffset issued = DateTimeOffset.UtcNow;
            try
            {
                using var doc = JsonDocument.Parse(body);
                var root = doc.RootElement;
                if (root.TryGetProperty("token", out var t) && t.ValueKind == JsonValueKind.String) value = t.GetString();
                if (string.IsNullOrEmpty(value) && root.TryGetProperty("access_token", out var a) && a.ValueKind == JsonValueKind.String) value = a.GetString();
                if (root.TryGetProperty("expires_in", out var e) && e.TryGetInt32(out var ei) && ei > 0) expiresIn = ei;
            }
            catch (JsonException) { }
            if (string.IsNullOrEmpty(value)) throw new TreechunkException($"{host}: the token service answered no token", ExitCodes.EnvironmentError);
            // A little early, so a token never expires on its way to the registry.
            var expires = issued + TimeSpan.FromSeconds(Math.Max(1, expiresIn - Math.Min(10, expiresIn / 4)));
            lock (_lock)
            {
                _tokens[host + " " + string.Join(' ', scopes.Order(StringComparer.Ordinal))] = new Token(host, value!, scopes, expires);
                TokensFetched++;
            }
        }
    }

    /// <summary>The repository a request is for and the scopes it needs: pull to read, pull and push to write.</summary>
    private static (string? Repository, IReadOnlyList<string> Scopes) ScopesOf(HttpRequestMessage request)
    {
        var path = request.RequestUri!.AbsolutePath;
        var m = RepositoryPath().Match(path);
        if (!m.Success) return (null, []);
        var repository = m.Groups[1].Value;
        var read = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head;
        var scopes = new List<string> { $"repository:{repository}:{(read ? "pull" : "pull,push")}" };
        if (request.Options.TryGetValue(ExtraScopes, out var extra)) scopes.AddRange(extra);
        return (repository, scopes);
    }

    [GeneratedRegex(@"^/v2/(.+?)/(?:blobs|manifests|tags|referrers)(?:/|$)")]
    private static partial Regex RepositoryPath();

    private static Challenge? ParseChallenge(HttpHeaderValueCollection<AuthenticationHeaderValue> headers)
    {
        foreach (var h in headers)
        {
            var scheme = h.Scheme.ToLowerInvariant();
            if (scheme is not ("bearer" or "basic")) continue;
            var p = Params(h.Parameter ?? "");
            return new Challenge(scheme, p.GetValueOrDefault("realm"), p.GetValueOrDefault("service"));
        }
        return null;
    }

    private static IEnumerable<string> ChallengeScopes(HttpHeaderValueCollection<AuthenticationHeaderValue> headers)
    {
        foreach (var h in headers)
            if (h.Scheme.Equals("bearer", StringComparison.OrdinalIgnoreCase) && Params(h.Parameter ?? "").GetValueOrDefault("scope") is { } scope)
                foreach (var s in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries)) yield return s;
    }

    /// <summary>key="value" pairs; values may be quoted and hold commas (scope="repository:a:pull,push").</summary>
    internal static Dictionary<string, string> Params(string text)
    {
        var result = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ',' || char.IsWhiteSpace(text[i]))) i++;
            int eq = text.IndexOf('=', i);
            if (eq < 0) break;
            var key = text[i..eq].Trim();
            i = eq + 1;
            var value = new StringBuilder();
            if (i < text.Length && text[i] == '"')
            {
                for (i++; i < text.Length && text[i] != '"'; i++)
                {
                    if (text[i] == '\\' && i + 1 < text.Length) i++;
                    value.Append(text[i]);
                }
                i++;
            }
            else
                for (; i < text.Length && text[i] != ','; i++) value.Append(text[i]);
            result[key] = value.ToString().Trim();
        }
        return result;
    }

    private static HttpRequestMessage Clone(HttpRequestMessage request)
    {
        var clone = new HttpRequestMessage(request.Method, request.RequestUri) { Content = request.Content, Version = request.Version };
        foreach (var h in request.Headers)
            if (!h.Key.Equals("Authorization", StringComparison.OrdinalIgnoreCase)) clone.Headers.TryAddWithoutValidation(h.Key, h.Value);
        foreach (var o in request.Options) ((IDictionary<string, object?>)clone.Options)[o.Key] = o.Value;
        return clone;
    }
}
