namespace Treechunk.Trees;

/// <summary>
/// The single seam between where a filesystem comes from (a directory, a flattened image, an
/// OSTree commit) and what is done with it. Entries come sorted by path (ordinal, byte order of
/// UTF-8), hardlinks already resolved: the first path of an inode in that order is a
/// <see cref="EntryType.Regular"/> entry carrying the data and every later path is a
/// <see cref="EntryType.Hardlink"/> naming it.
/// </summary>
public interface ITree : IDisposable
{
    /// <summary>A short human description, e.g. the directory path.</summary>
    string Description { get; }

    IReadOnlyList<TreeEntry> Entries { get; }

    /// <summary>Opens the content of a regular file entry for streaming.</summary>
    Stream OpenContent(TreeEntry entry);

    /// <summary>The entry at a path, or null.</summary>
    TreeEntry? Find(string path);

    /// <summary>The entry at a path given as a span (trees with a <see cref="PathIndex"/> find it without allocating).</summary>
    TreeEntry? Find(ReadOnlySpan<char> path) => Find(path.ToString());
}

/// <summary>Helpers shared by tree implementations.</summary>
public static class TreePaths
{
    /// <summary>Ordinal comparison of UTF-8 byte order, which for .NET strings is ordinal on UTF-16 except for surrogates; we accept that difference.</summary>
    public static readonly StringComparer Comparer = StringComparer.Ordinal;

    /// <summary>
    /// Normalises a path from an archive or a database into tree form ("usr/bin/x"): strips
    /// leading "/" and "./", collapses "//" and "/./". Returns null for a path that leaves the
    /// root through "..", so callers can refuse it.
    /// </summary>
    public static string? Normalize(string path)
    {
        var parts = new List<string>();
        foreach (var part in path.Split('/'))
        {
            if (part.Length == 0 || part == ".") continue;
            if (part == "..") return null;
            parts.Add(part);
        }
        return string.Join('/', parts);
    }

    /// <summary>All ancestors of a tree path, outermost first ("a/b/c" -> "a", "a/b").</summary>
    public static IEnumerable<string> Ancestors(string path)
    {
        for (int i = path.IndexOf('/'); i >= 0; i = path.IndexOf('/', i + 1))
            yield return path[..i];
    }
}
