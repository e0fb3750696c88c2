using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Treechunk.IO;

namespace Treechunk.Registry;

/// <summary>A user name and secret for a registry. Never printed: <see cref="ToString"/> hides the secret.</summary>
public sealed record RegistryCredential(string Username, string Secret, string From)
{
    /// <summary>An identity token (docker's OAuth refresh token) rather than a password.</summary>
    public bool IsIdentityToken { get; init; }

    public override string ToString() => $"{Username} (from {From})";
}

/// <summary>
/// Where credentials come from, in the order podman and skopeo look (containers-auth.json(5)):
/// <c>$REGISTRY_AUTH_FILE</c> alone when set; else <c>$XDG_RUNTIME_DIR/containers/auth.json</c>
/// (<c>/run/containers/UID/auth.json</c> without it), <c>$XDG_CONFIG_HOME/containers/auth.json</c>
/// (<c>~/.config/containers/auth.json</c>), docker's <c>$DOCKER_CONFIG/config.json</c>
/// (<c>~/.docker/config.json</c>, with its <c>credHelpers</c> and <c>credsStore</c>, asked through
/// <c>docker-credential-NAME get</c>) and <c>~/.dockercfg</c>. In each file the most specific
/// key wins (<c>host/ns/repo</c>, <c>host/ns</c>, <c>host</c>); the first file with a match answers.
/// </summary>
public static class Credentials
{
    private static string Home => RegistriesConf.Home;

    /// <summary>The file <c>oci registry auth</c> writes, as <c>podman login</c> does.</summary>
    public static string DefaultAuthFile
    {
        get
        {
            if (Environment.GetEnvironmentVariable("REGISTRY_AUTH_FILE") is { Length: > 0 } f) return f;
            if (Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } run) return Path.Join(run, "containers/auth.json");
            return $"/run/containers/{Posix.LibC.EffectiveUid}/auth.json";
        }
    }

    private sealed record Source(string Path, bool Docker, bool Legacy);

    private static List<Source> Sources()
    {
        if (Environment.GetEnvironmentVariable("REGISTRY_AUTH_FILE") is { Length: > 0 } f) return [new(f, false, false)];
        var list = new List<Source> { new(DefaultAuthFile, false, false) };
        var configHome = Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } x ? x : Path.Join(Home, ".config");
        list.Add(new(Path.Join(configHome, "containers/auth.json"), false, false));
        var docker = Environment.GetEnvironmentVariable("DOCKER_CONFIG") is { Length: > 0 } d ? d : Path.Join(Home, ".docker");
        list.Add(new(Path.Join(docker, "config.json"), true, false));
        list.Add(new(Path.Join(Home, ".dockercfg"), true, true));
        return list;
    }

    /// <summary>Credentials for a repository (or a whole registry when <paramref name="repository"/> is null), or null for anonymous access.</summary>
    public static RegistryCredential? Find(string host, string? repository)
    {
        foreach (var source in Sources())
        {
            if (!File.Exists(source.Path)) continue;
            JsonObject? root;
            try
            {
                root = JsonNode.Parse(File.ReadAllBytes(source.Path)) as JsonObject;
            }
            catch (JsonException e)
            {
                throw new TreechunkException($"{source.Path}: not a readable auth file: {e.Message.Split('\n')[0]}");
            }
            if (root == null) continue;
            var auths = source.Legacy ? root : root["auths"] as JsonObject;
            // credHelpers (per registry) beat auths; credsStore is the default helper.
            if (source.Docker && root["credHelpers"] is JsonObject helpers && helpers[host]?.GetValue<string>() is { } helper)
                return FromHelper(helper, host, source.Path);
            if (auths != null && Match(auths, host, repository) is { } entry && Decode(entry, source.Path) is { } found) return found;
            if (source.Docker && root["credsStore"]?.GetValue<string>() is { Length: > 0 } store)
                if (FromHelper(store, host, source.Path, missingIsNull: true) is { } stored) return stored;
        }
        return null;
    }

    private static JsonObject? Match(JsonObject auths, string host, string? repository)
    {
        var normalized = new Dictionary<string, JsonObject>(StringComparer.Ordinal);
        foreach (var (key, value) in auths)
            if (value is JsonObject o) normalized[NormalizeKey(key)] = o;
        var candidates = new List<string>();
        if (repository != null)
        {
            var parts = repository.Split('/');
            for (int n = parts.Length; n >= 1; n--) candidates.Add(host + "/" + string.Join('/', parts[..n]));
        }
        candidates.Add(host);
        if (host == RegistryName.DockerHub) candidates.Add("index.docker.io");
        foreach (var c in candidates)
            if (normalized.TryGetValue(c, out var o)) return o;
        return null;
    }

    /// <summary>docker writes "https://index.docker.io/v1/" and "http://host:5000"; podman writes "host" or "host/repo".</summary>
    private static string NormalizeKey(string key)
    {
        foreach (var scheme in new[] { "https://", "http://" })
            if (key.StartsWith(scheme, StringComparison.Ordinal))
            {
                key = key[scheme.Length..];
                int slash = key.IndexOf('/');
                if (slash >= 0) key = key[..slash];
                break;
            }
        return key.TrimEnd('/');
    }

    private static RegistryCredential? Decode(JsonObject entry, string file)
    {
        if (entry["identitytoken"]?.GetValue<string>() is { Length: > 0 } token)
            return new RegistryCredential("<token>", token, file) { IsIdentityToken = true };
        if (entry["auth"]?.GetValue<string>() is { Length: > 0 } auth)
        {
            string text;
            try
            {
                text = Encoding.UTF8.GetString(Convert.FromBase64String(auth));
            }
            catch (FormatException)
            {
                throw new TreechunkException($"{file}: an \"auth\" entry is not base64");
            }
            int colon = text.IndexOf(':');
            if (colon < 0) throw new TreechunkException($"{file}: an \"auth\" entry is not base64 of user:password");
            return new RegistryCredential(text[..colon], text[(colon + 1)..], file);
        }
        if (entry["username"]?.GetValue<string>() is { Length: > 0 } user && entry["password"]?.GetValue<string>() is { } password)
            return new RegistryCredential(user, password, file);
        return null;
    }

    /// <summary>docker-credential-NAME get: the server on stdin, {"Username","Secret"} on stdout.</summary>
    private static RegistryCredential? FromHelper(string helper, string host, string file, bool missingIsNull = false)
    {
        var tool = "docker-credential-" + helper;
        var result = ProcessRunner.RunWithInput(tool, ["get"], host + "\n", $"the credential helper {tool} is named in {file}");
        if (result.ExitCode != 0)
        {
            var text = string.Join(" ", result.Lines).Trim();
            if (missingIsNull && text.Contains("credentials not found", StringComparison.OrdinalIgnoreCase)) return null;
            throw new TreechunkException($"{tool} get {host} failed (exit {result.ExitCode}): {ProcessRunner.OneLine(result.ErrorLines.Count > 0 ? result.ErrorLines : result.Lines)}", ExitCodes.EnvironmentError);
        }
        try
        {
            var o = JsonNode.Parse(string.Join("\n", result.OutputLines)) as JsonObject;
            var user = o?["Username"]?.GetValue<string>() ?? "";
            var secret = o?["Secret"]?.GetValue<string>() ?? "";
            if (secret.Length == 0) return null;
            return new RegistryCredential(user, secret, tool) { IsIdentityToken = user == "<token>" };
        }
        catch (JsonException)
        {
            throw new TreechunkException($"{tool} get {host} did not answer JSON", ExitCodes.EnvironmentError);
        }
    }

    /// <summary>Stores credentials for a registry in <paramref name="authFile"/> (containers auth.json format, mode 0600), keeping its other entries.</summary>
    public static void Store(string authFile, string host, string username, string password)
    {
        var root = ReadAuthFile(authFile);
        var auths = root["auths"] as JsonObject ?? new JsonObject();
        root["auths"] = auths;
        auths[host] = new JsonObject { ["auth"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(username + ":" + password)) };
        WriteAuthFile(authFile, root);
    }

    /// <summary>Removes a registry's entry; false when there was none.</summary>
    public static bool Remove(string authFile, string host)
    {
        if (!File.Exists(authFile)) return false;
        var root = ReadAuthFile(authFile);
        if (root["auths"] is not JsonObject auths || !auths.Remove(host)) return false;
        WriteAuthFile(authFile, root);
        return true;
    }

    private static JsonObject ReadAuthFile(string authFile)
    {
        if (!File.Exists(authFile)) return new JsonObject();
        try
        {
            return JsonNode.Parse(File.ReadAllBytes(authFile)) as JsonObject ?? new JsonObject();
        }
        catch (JsonException e)
        {
            throw new TreechunkException($"{authFile}: not a readable auth file: {e.Message.Split('\n')[0]}");
        }
    }

    private static void WriteAuthFile(string authFile, JsonObject root)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(authFile))!;
        Directory.CreateDirectory(dir);
        using var file = AtomicFile.Create(authFile);
        // The secret must never be readable by others, not even for a moment.
        Posix.LibC.FChmod((int)file.Stream.SafeFileHandle.DangerousGetHandle(), 0x180);
        file.Stream.Write(Encoding.UTF8.GetBytes(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n"));
        file.Commit(authFile);
    }
}
