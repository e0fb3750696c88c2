using System.Text.Json;
using System.Text.Json.Nodes;
using Treechunk.IO;

namespace Treechunk.Registry;

/// <summary>
/// Which repositories of a registry a blob was seen in (pulled from, pushed to), so a push to
/// another repository of the same registry can mount it (<c>POST ...uploads/?mount=D&amp;from=R</c>)
/// instead of sending it. Kept across runs in <c>$XDG_CACHE_HOME/treechunk/blob-locations.json</c>
/// (<c>~/.cache/...</c>); a lost or damaged file only costs an upload.
/// </summary>
public sealed class BlobLocations
{
    private const int MaxReposPerBlob = 4;
    private const int MaxBlobsPerHost = 20_000;
    private readonly Dictionary<string, Dictionary<string, List<string>>> _seen = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private bool _dirty;

    public static string FilePath =>
        Path.Join(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } c ? c : Path.Join(RegistriesConf.Home, ".cache"), "treechunk", "blob-locations.json");

    public static BlobLocations Load()
    {
        var locations = new BlobLocations();
        locations.MergeFromDisk();
        return locations;
    }

    private void MergeFromDisk()
    {
        try
        {
            if (!File.Exists(FilePath) || JsonNode.Parse(File.ReadAllBytes(FilePath)) is not JsonObject root) return;
            foreach (var (host, blobs) in root)
                if (blobs is JsonObject b)
                    foreach (var (digest, repos) in b)
                        if (repos is JsonArray a)
                            foreach (var r in a)
                                if (r?.GetValue<string>() is { } repo) Add(host, digest, repo, dirty: false);
        }
        catch (Exception e) when (e is JsonException or IOException or InvalidOperationException or UnauthorizedAccessException) { }
    }

    public void Seen(string host, string digest, string repository) => Add(host, digest, repository, dirty: true);

    private void Add(string host, string digest, string repository, bool dirty)
    {
        lock (_lock)
        {
            if (!_seen.TryGetValue(host, out var blobs)) _seen[host] = blobs = new(StringComparer.Ordinal);
            if (!blobs.TryGetValue(digest, out var repos))
            {
                if (blobs.Count >= MaxBlobsPerHost) return;
                blobs[digest] = repos = [];
            }
            if (repos.Contains(repository)) return;
            repos.Insert(0, repository);
            if (repos.Count > MaxReposPerBlob) repos.RemoveAt(repos.Count - 1);
            _dirty |= dirty;
        }
    }

    /// <summary>Another repository of <paramref name="host"/> that had the blob, or null.</summary>
    public string? OtherRepository(string host, string digest, string repository)
    {
        lock (_lock)
            return _seen.TryGetValue(host, out var blobs) && blobs.TryGetValue(digest, out var repos)
                ? repos.FirstOrDefault(r => r != repository)
                : null;
    }

    public void Save()
    {
        lock (_lock)
        {
            if (!_dirty) return;
            try
            {
                var mine = _seen.ToDictionary(h => h.Key, h => h.Value.ToDictionary(b => b.Key, b => b.Value.ToList()));
                MergeFromDisk(); // another run may have written meanwhile
                foreach (var (host, blobs) in mine)
                    foreach (var (digest, repos) in blobs)
                        foreach (var r in Enumerable.Reverse(repos)) Add(host, digest, r, dirty: false);
                var root = new JsonObject();
                foreach (var (host, blobs) in _seen)
                {
                    var b = new JsonObject();
                    foreach (var (digest, repos) in blobs) b[digest] = new JsonArray(repos.Select(r => (JsonNode)JsonValue.Create(r)!).ToArray());
                    root[host] = b;
                }
                Directory.CreateDirectory(Path.GetDirectoryName(FilePath)!);
                AtomicFile.WriteText(FilePath, root.ToJsonString());
                _dirty = false;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }
}
