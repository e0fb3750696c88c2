namespace Treechunk.Compose;

public static class PackageBackends
{
    /// <summary>The backend a treefile's repos call for.</summary>
    public static IPackageBackend For(Treefile tf)
    {
        if (tf.Repos.Count == 0) throw new TreechunkException($"treefile {tf.Path} names no repos");
        var kinds = tf.Repos.Select(r => r.Kind).Distinct().ToList();
        if (kinds.Count > 1)
            throw new TreechunkException($"treefile {tf.Path} mixes apt (.sources) and dnf (.repo) repos; one tree is installed by one package manager");
        return kinds[0] switch
        {
            RepoKind.Apt => new AptBackend(),
            RepoKind.Dnf => new DnfBackend(),
            var k => throw new TreechunkException($"treefile {tf.Path}: no package backend for {k} repos"),
        };
    }
}

/// <summary>
/// Removes what a package manager leaves in a fresh root that must not reach an image. Paths are
/// relative to the root and never followed through symlinks: a link in the tree must not make us
/// delete anything outside it.
/// </summary>
internal sealed class RootfsCleaner(string root)
{
    private readonly string _root = Path.GetFullPath(root);

    /// <summary>The full path of a tree path whose every directory component is a real directory; null otherwise.</summary>
    private string? Real(string relative, bool lastMayBeLink = true)
    {
        var parts = relative.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = _root;
        for (int i = 0; i < parts.Length; i++)
        {
            current = Path.Join(current, parts[i]);
            bool last = i == parts.Length - 1;
            if (new FileInfo(current).LinkTarget != null) return last && lastMayBeLink ? current : null;
            if (!last && !Directory.Exists(current)) return null;
        }
        return current;
    }

    private static bool IsRealDirectory(string full) =>
        Directory.Exists(full) && new DirectoryInfo(full).LinkTarget == null;

    private static void DeleteEntry(string full)
    {
        var info = new FileInfo(full);
        // Recursive deletion removes symlinks found inside the directory without following them.
        if (info.LinkTarget == null && Directory.Exists(full)) Directory.Delete(full, recursive: true);
        else if (info.Exists || info.LinkTarget != null) File.Delete(full);
    }

    /// <summary>Deletes a file or symlink (or a whole directory).</summary>
    public void Delete(string relative)
    {
        var full = Real(relative);
        if (full != null) DeleteEntry(full);
    }

    /// <summary>Deletes the entries of a directory whose names match a glob, keeping the directory.</summary>
    public void DeleteIn(string relativeDir, string pattern = "*")
    {
        var dir = Real(relativeDir, lastMayBeLink: false);
        if (dir == null || !IsRealDirectory(dir)) return;
        foreach (var entry in Directory.EnumerateFileSystemEntries(dir, pattern, new EnumerationOptions { AttributesToSkip = 0, MatchType = MatchType.Simple }))
            DeleteEntry(entry);
    }

    /// <summary>
    /// Deletes every non-directory below a directory, keeping the directories, and keeping empty
    /// files when asked (they hold nothing that differs between runs, only a mode and owner).
    /// </summary>
    public void DeleteFilesBelow(string relativeDir, bool keepEmptyFiles)
    {
        var dir = Real(relativeDir, lastMayBeLink: false);
        if (dir == null || !IsRealDirectory(dir)) return;
        foreach (var entry in new DirectoryInfo(dir).EnumerateFileSystemInfos("*", new EnumerationOptions { AttributesToSkip = 0 }))
        {
            if (entry is DirectoryInfo d && d.LinkTarget == null) DeleteFilesBelow(Path.GetRelativePath(_root, d.FullName), keepEmptyFiles);
            else if (keepEmptyFiles && entry is FileInfo { LinkTarget: null, Length: 0 }) continue;
            else File.Delete(entry.FullName);
        }
    }

    /// <summary>Empties a regular file that exists (machine-id: present but empty means "generate on first boot").</summary>
    public void Truncate(string relative)
    {
        var full = Real(relative, lastMayBeLink: false);
        if (full != null && File.Exists(full) && new FileInfo(full).LinkTarget == null)
            using (new FileStream(full, FileMode.Truncate, FileAccess.Write)) { }
    }

    /// <summary>Removes a directory when it is empty; true when it is gone.</summary>
    public bool RemoveIfEmpty(string relative)
    {
        var full = Real(relative, lastMayBeLink: false);
        if (full == null || !IsRealDirectory(full)) return false;
        if (Directory.EnumerateFileSystemEntries(full).Any()) return false;
        Directory.Delete(full);
        return true;
    }

    public bool Exists(string relative) => Real(relative) is { } full && (File.Exists(full) || Directory.Exists(full));

    public string FullPath(string relative) => Path.Join(_root, relative);
}
