using System.Net;
using System.Net.Http.Headers;
using System.Text;

namespace Treechunk.Registry;

/// <summary>One finding of <c>oci registry test</c>.</summary>
public sealed record RegistryFinding(string What, bool Ok, string Detail);

/// <summary>What `oci registry test` and `oci registry auth` check, one finding at a time.</summary>
public static class RegistryCheck
{
    /// <summary>Reachability, API version, transport, auth kind, and with a repository pull and push permission.</summary>
    public static List<RegistryFinding> Test(RegistryContext ctx, string host, string? repository)
    {
        var findings = new List<RegistryFinding>();
        var client = ctx.Client(new RegistryName(host, repository ?? "library/treechunk-test"));
        (HttpStatusCode Status, string? ApiVersion, string? AuthScheme, Uri Base) ping;
        try
        {
            ping = client.Ping();
        }
        catch (TreechunkException e)
        {
            findings.Add(new("reachable", false, e.Message));
            return findings;
        }
        findings.Add(new("reachable", true, $"{ping.Base.GetLeftPart(UriPartial.Authority)} answered {(int)ping.Status} to GET /v2/"));
        findings.Add(new("api", ping.ApiVersion == "registry/2.0" || ping.Status is HttpStatusCode.OK or HttpStatusCode.Unauthorized,
            ping.ApiVersion != null ? $"Docker-Distribution-API-Version: {ping.ApiVersion}" : "no Docker-Distribution-API-Version header"));
        findings.Add(new("transport", true, ping.Base.Scheme == "https" ? "TLS" : "plain HTTP (insecure)"));
        var credential = ctx.CredentialFor(host, repository);
        findings.Add(new("auth", true, ping.Status == HttpStatusCode.Unauthorized
            ? $"{ping.AuthScheme ?? "unknown"} authentication; {(credential != null ? "credentials " + credential : "no credentials (anonymous)")}"
            : "none required"));
        if (repository == null) return findings;
        findings.Add(Permission("pull", () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, client.Api("tags/list"));
            using var response = client.Send(request);
            return response.StatusCode switch
            {
                HttpStatusCode.OK => (true, "allowed"),
                HttpStatusCode.NotFound => (true, "allowed (the repository has no images yet)"),
                _ => (false, $"{(int)response.StatusCode} {response.ReasonPhrase}"),
            };
        }));
        findings.Add(Permission("push", () =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, client.Api("blobs/uploads/"));
            using var response = client.Send(request);
            if (response.StatusCode != HttpStatusCode.Accepted) return (false, $"{(int)response.StatusCode} {response.ReasonPhrase}");
            // Cancel the upload this opened, best effort (a registry may want more than push
            // for a DELETE; an abandoned upload expires on its own).
            if (response.Headers.Location is { } location)
            {
                try
                {
                    using var cancel = new HttpRequestMessage(HttpMethod.Delete, new Uri(client.Api(""), location));
                    using var _ = client.Send(cancel);
                }
                catch (TreechunkException) { }
            }
            return (true, "allowed");
        }));
        return findings;
    }

    private static RegistryFinding Permission(string what, Func<(bool Ok, string Detail)> check)
    {
        try
        {
            var (ok, detail) = check();
            return new($"{what} permission", ok, detail);
        }
        catch (TreechunkException e)
        {
            return new($"{what} permission", false, e.Message);
        }
    }

    /// <summary>
    /// Checks credentials against a registry before they are stored: Basic registries answer
    /// GET /v2/ with them; Bearer ones hand out a token for them. Throws "authentication failed".
    /// </summary>
    public static void VerifyCredentials(RegistryContext ctx, string host, RegistryCredential credential)
    {
        var client = ctx.Client(new RegistryName(host, "library/treechunk-test"));
        var ping = client.Ping();
        if (ping.Status == HttpStatusCode.OK) return; // no auth at all: any credentials "work"
        if (ping.Status != HttpStatusCode.Unauthorized) throw new TreechunkException($"{host}: GET /v2/ answered {(int)ping.Status}", ExitCodes.EnvironmentError);
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(ping.Base, "v2/"));
        using var response = client.Send(request);
        if (response.StatusCode != HttpStatusCode.OK)
            throw new TreechunkException($"{host}: authentication failed for {credential.Username}");
    }
}
