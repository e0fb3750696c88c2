using Treechunk.IO;

namespace Treechunk.Ostree;

/// <summary>
/// An OSTree repository on disk. This part holds what both readers and writers need: the
/// config, the mode, object paths and refs. Reading objects lives in OstreeRepo.Read.cs,
/// writing in OstreeRepo.Write.cs.
/// </summary>
public sealed partial class OstreeRepo
{
    public string Path { get; }
    public RepoMode Mode { get; }
    // Object paths are built from the absolute path: a relative one costs a getcwd() in every
    // file open, thousands of them per commit.
    private readonly string _fullPath;

    private OstreeRepo(string path, RepoMode mode)
    {
        Path = path;
        Mode = mode;
        _fullPath = System.IO.Path.GetFullPath(path);
    }

    public static OstreeRepo Open(string path)
    {
        if (!Directory.Exists(path)) throw new TreechunkException($"{path}: no such OSTree repository");
        var configPath = System.IO.Path.Join(path, "config");
        if (!File.Exists(configPath)) throw new TreechunkException($"{path} is not an OSTree repository (no config file)");
        var config = KeyFile.Parse(File.ReadAllText(configPath), configPath);
        var version = config.Get("core", "repo_version");
        if (version != "1") throw new TreechunkException($"{configPath}: unsupported repo_version '{version ?? "(missing)"}' (expected 1)");
        var modeText = config.Get("core", "mode") ?? "bare";
        var mode = ParseMode(modeText) ?? throw new TreechunkException($"{configPath}: unknown repository mode '{modeText}' (expected bare, bare-user, bare-user-only or archive)");
        return new OstreeRepo(path, mode);
    }

    public static RepoMode? ParseMode(string text) => text switch
    {
        "bare" => RepoMode.Bare,
        "archive" or "archive-z2" => RepoMode.Archive,
        "bare-user" => RepoMode.BareUser,
        "bare-user-only" => RepoMode.BareUserOnly,
        _ => null,
    };

    public static string ModeName(RepoMode mode) => mode switch
    {
        RepoMode.Bare => "bare",
        RepoMode.Archive => "archive-z2",
        RepoMode.BareUser => "bare-user",
        _ => "bare-user-only",
    };

    public string ObjectPath(string checksum, ObjectType type)
    {
        // Checksums reach here from untrusted objects and command lines; never build a path from a malformed one.
        OstreeObjects.ValidateChecksum(checksum);
        return System.IO.Path.Join(_fullPath, OstreeObjects.RelativePath(checksum, type, Mode));
    }

    /// <summary>
    /// Resolves a ref (refs/heads/REF, refs/remotes/REMOTE/REF, or "REMOTE:REF") or a full
    /// checksum to a commit checksum.
    /// </summary>
    public string ResolveRev(string rev)
    {
        if (rev.Length == 64 && rev.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f')) return rev;
        ValidateRefName(rev.Replace(':', '/'));
        var candidates = new List<string>();
        int colon = rev.IndexOf(':');
        if (colon > 0) candidates.Add(System.IO.Path.Join(Path, "refs", "remotes", rev[..colon], rev[(colon + 1)..]));
        else
        {
            candidates.Add(System.IO.Path.Join(Path, "refs", "heads", rev));
            candidates.Add(System.IO.Path.Join(Path, "refs", "remotes", rev));
        }
        foreach (var file in candidates)
        {
            if (!File.Exists(file)) continue;
            var text = File.ReadAllText(file).Trim();
            OstreeObjects.ValidateChecksum(text);
            return text;
        }
        throw new TreechunkException($"{Path}: no ref '{rev}' (see treechunk ostree refs --repo {Path})");
    }

    /// <summary>
    /// A commit and its ancestors, newest first, as far as they are in the repository;
    /// <c>Truncated</c> when a parent is named but absent (a shallow pull).
    /// </summary>
    public (List<(string Checksum, OstreeCommit Commit)> Commits, bool Truncated) History(string rev)
    {
        var commits = new List<(string, OstreeCommit)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (string? c = ResolveRev(rev); c != null;)
        {
            if (!seen.Add(c)) throw new TreechunkException($"{Path}: commit {c} is its own ancestor (corrupt history)", ExitCodes.VerificationFailed);
            var commit = ReadCommit(c);
            commits.Add((c, commit));
            c = commit.Parent;
            if (c != null && !HasObject(c, ObjectType.Commit)) return (commits, true);
        }
        return (commits, false);
    }

    /// <summary>All refs: local heads as "name", remote ones as "remote:name", sorted.</summary>
    public SortedDictionary<string, string> ListRefs()
    {
        var result = new SortedDictionary<string, string>(StringComparer.Ordinal);
        void Walk(string dir, Func<string, string> name)
        {
            if (!Directory.Exists(dir)) return;
            foreach (var file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories))
            {
                var rel = System.IO.Path.GetRelativePath(dir, file).Replace('\\', '/');
                var text = File.ReadAllText(file).Trim();
                if (text.Length == 64) result[name(rel)] = text;
            }
        }
        Walk(System.IO.Path.Join(Path, "refs", "heads"), r => r);
        var remotes = System.IO.Path.Join(Path, "refs", "remotes");
        if (Directory.Exists(remotes))
            foreach (var remote in Directory.EnumerateDirectories(remotes))
                Walk(remote, r => System.IO.Path.GetFileName(remote) + ":" + r);
        return result;
    }

    public static void ValidateRefName(string name)
    {
        if (name.Length == 0 || name.StartsWith('/') || name.EndsWith('/') || name.Split('/').Any(p => p is "" or "." or ".."))
            throw new TreechunkException($"invalid ref name '{name}'");
    }
}
