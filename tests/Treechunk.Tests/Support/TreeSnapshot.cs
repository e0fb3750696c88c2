using System.Security.Cryptography;
using Treechunk.Trees;

namespace Treechunk.Tests.Support;

/// <summary>
/// Everything about a directory tree that an image must preserve, one line per entry:
/// type, mode, owner, size, content hash, link target, device numbers, xattrs, hardlink group.
/// Two trees are equal for our purposes when their snapshots are equal.
/// </summary>
public static class TreeSnapshot
{
    /// <param name="hardlinksAsCopies">Show each further path of an inode as a copy of the first (for checkouts that copy instead of linking).</param>
    public static List<string> Of(string root, Func<string, bool>? include = null, bool withXattrs = true, bool hardlinksAsCopies = false)
    {
        using var tree = DirectoryTree.Open(root);
        var lines = new List<string>();
        foreach (var entry in tree.Entries)
        {
            var e = entry;
            if (hardlinksAsCopies && e.Type == EntryType.Hardlink)
                e = tree.Find(e.LinkTarget!)! with { Path = e.Path };
            if (include != null && !include(e.Path)) continue;
            string content = "";
            if (e.Type == EntryType.Regular)
            {
                using var s = tree.OpenContent(e);
                content = Convert.ToHexStringLower(SHA256.HashData(s))[..16];
            }
            var xattrs = withXattrs
                ? string.Join(";", e.Xattrs.Where(x => x.Key != "security.selinux").Select(x => x.Key + "=" + Convert.ToHexStringLower(x.Value)))
                : "";
            lines.Add($"{e.Path} {e.Type} {Convert.ToString(e.Mode, 8)} {e.Uid}:{e.Gid} {e.Size} {content} {e.LinkTarget} {e.DevMajor},{e.DevMinor} [{xattrs}]");
        }
        return lines;
    }

    public static void AssertEqual(List<string> expected, List<string> actual)
    {
        var missing = expected.Except(actual).Take(10).ToList();
        var extra = actual.Except(expected).Take(10).ToList();
        if (missing.Count > 0 || extra.Count > 0)
            throw new Xunit.Sdk.XunitException("trees differ\nonly in expected:\n  " + string.Join("\n  ", missing) + "\nonly in actual:\n  " + string.Join("\n  ", extra));
    }
}
