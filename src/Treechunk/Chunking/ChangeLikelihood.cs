namespace Treechunk.Chunking;

/// <summary>
/// How likely each component is to change in the next update, from its change history alone,
/// so the planner can weigh a layer's bytes by the chance they are downloaded again.
///
/// The model: a package's changes arrive as a Poisson process whose rate is the number of
/// changelog entries in the two years up to its newest entry (plus half an entry, so a quiet
/// package is unlikely to change rather than certain not to), and an update comes a quarter after
/// the build: P(change) = 1 - exp(-rate * 0.25 year). Each package is read against its own newest
/// entry, never today's date nor other packages' history: the estimate is a function of the
/// input, and a package an update leaves alone keeps its estimate, so a plan made afresh for the
/// update groups it as before (a shared clock would move every package's window at once).
/// Volatile state and unowned runs count as always changing; a component without history
/// (user.component, a large file, a package without changelog) gets <see cref="Unknown"/>.
/// A part of a large package changes only if the package does, and then the rebuilt part (its
/// binaries) nearly always does while a data piece seldom does: measured on a Debian security
/// update, 96-100% of the binaries' bytes changed in most upgraded packages but 3% of perl's data.
/// </summary>
public static class ChangeLikelihood
{
    public const double Unknown = 0.25;
    /// <summary>P(a rebuilt piece changes | its package changes).</summary>
    public const double RebuiltShare = 0.75;
    /// <summary>P(a data piece changes | its package changes).</summary>
    public const double DataShare = 0.2;

    private const long Window = 2 * 365 * 86400L;
    private const double YearsToNextUpdate = 0.25;

    /// <summary>P(the whole component, or the package a part belongs to, changes in the next update).</summary>
    public static double OfWhole(Component c)
    {
        if (c.Kind is ComponentKind.State or ComponentKind.Unowned or ComponentKind.Chunk) return 1.0;
        if (c.ChangeTimes.Count == 0) return Unknown;
        long newest = c.ChangeTimes[0];
        int recent = 0;
        foreach (var t in c.ChangeTimes)
            if (t > newest - Window) recent++;
        double perYear = (recent + 0.5) / (Window / (365 * 86400.0));
        return 1 - Math.Exp(-perYear * YearsToNextUpdate);
    }

    /// <summary>P(the part changes, given its package does): 1 for whole components.</summary>
    public static double ShareOf(Component c) => c.Part switch
    {
        PartKind.Rebuilt => RebuiltShare,
        PartKind.Data => DataShare,
        _ => 1.0,
    };

    /// <summary>
    /// P(a layer holding these components changes). Parts of one package change together only
    /// through their package: P = 1 - prod over packages (1 - p_pkg * (1 - prod over its parts here (1 - share))).
    /// </summary>
    public static double OfLayer(IEnumerable<Component> members)
    {
        double stays = 1;
        foreach (var g in members.GroupBy(c => c.WholeName, StringComparer.Ordinal))
        {
            double partsStay = 1;
            foreach (var c in g) partsStay *= 1 - ShareOf(c);
            stays *= 1 - OfWhole(g.First()) * (1 - partsStay);
        }
        return 1 - stays;
    }
}
