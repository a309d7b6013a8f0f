"""The book's concepts in its general index and first in its search results.

Without this, the index (genindex.html) listed only the package's functions, and a search
for "iMAML" or "MAML++" ranked a dozen API entries and passing mentions above the chapter
that explains the method (Sphinx scores an object's name above a page's words). Here each
concept names the section that explains it; the build adds an index entry there, so

* the general index lists the concepts beside the API, each linked to its section;
* Sphinx's search ranks an index entry that matches the query above everything else, so
  "imaml" leads to chapter 06 and "MAML++" to its section of chapter 10.

The chapters are left as written (handouts and the lab edition read the same Markdown);
`CONCEPTS` is the one list. A section named here that a chapter no longer has is a build
warning (an error under ``-W``).
"""
from __future__ import annotations

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform

#: {chapter: {section title (its beginning; None for the chapter itself): [concepts]}}
CONCEPTS: dict[str, dict[str | None, list[str]]] = {
    "chapters/01_few_shot": {
        None: ["few-shot learning", "meta-learning", "task distribution"],
        "Tasks, support sets and query sets": ["support set", "query set", "N-way K-shot", "sinusoid regression"],
        "Notation used across the book": ["notation"],
        "Why not just train on all tasks?": ["joint training"],
    },
    "chapters/02_maml": {
        None: ["MAML", "model-agnostic meta-learning"],
        "The objective: a loss measured after adaptation": ["meta-objective", "inner loop", "outer loop",
                                                            "meta-gradient", "bi-level optimisation"],
        "Is the meta-gradient right?": ["finite differences"],
        "Meta-training on sinusoids": ["meta-training on sinusoids"],
        "The numbers: MAML paper, Appendix C, Table 2": ["diverged tasks (the test-time rule)"],
        "When training diverges": ["divergence of meta-training"],
    },
    "chapters/03_hessian": {
        None: ["second-order MAML", "Hessian"],
        "Conventions: Jacobians and gradients": ["Jacobian"],
        "Gradients of gradients, bi-level optimisation": ["Hessian-vector product", "second-order terms dropped"],
        "The Hessian of the squared error": ["Gauss-Newton"],
    },
    "chapters/04_fomaml": {None: ["first-order MAML", "FOMAML"]},
    "chapters/05_reptile": {
        None: ["Reptile"],
        "What several steps add: the Taylor analysis": ["AvgGrad", "AvgGradInner", "Taylor expansion"],
        "Which inner gradients matter": ["ablation of inner gradients"],
    },
    "chapters/06_imaml": {
        None: ["iMAML", "implicit MAML"],
        "The proximal inner problem": ["proximal regularisation"],
        "The implicit function theorem, step by step": ["implicit function theorem"],
        "Conjugate gradient on Hessian-vector products": ["conjugate gradient"],
    },
    "chapters/07_comparison": {
        None: ["comparison of methods"],
        "Memory as inner steps grow": ["memory of a meta-step"],
    },
    "chapters/08_classification": {
        None: ["Omniglot", "few-shot classification"],
        "Your turn: one drawing per character": ["Omniglot game"],
        "Tasks, rotations and Lake's runs": ["Lake's 20-way one-shot runs", "rotations as new classes"],
        "The network, and batch normalisation per task": ["batch normalisation"],
    },
    "chapters/09_reproduction": {
        None: ["reproduction of the MAML paper"],
        "How much of the MAML row is the training run?": ["training seeds"],
    },
    "chapters/10_wider_map": {
        "ANIL: adapt the head only": ["ANIL"],
        "Meta-SGD: a step size per parameter": ["Meta-SGD"],
        "MAML++: how to train your MAML": ["MAML++"],
        "Prototypical Networks: learning by averaging": ["Prototypical Networks"],
        "Rapid learning or feature reuse?": ["feature reuse"],
    },
    "chapters/A1_performance": {
        None: ["performance"],
        "Meta-training on several processes": ["distributed meta-training"],
        "Convolutions: a meta-batch on a CPU": ["convolutions on a CPU"],
    },
}


class ConceptIndex(SphinxTransform):
    """Index entries for the concepts of `CONCEPTS` at the start of their sections."""

    default_priority = 840  # before the domains collect the page's index entries (850)

    def apply(self, **kwargs) -> None:
        sections = CONCEPTS.get(self.env.docname)
        if not sections:
            return
        found = list(self.document.findall(nodes.section))
        for title, concepts in sections.items():
            section = found[0] if title is None and found else next(
                (s for s in found if s[0].astext().replace("’", "'").startswith(title)), None)
            if section is None or not section["ids"]:
                from sphinx.util import logging

                logging.getLogger(__name__).warning(
                    f"concept_index: {self.env.docname} has no section titled {title!r} "
                    f"(for {', '.join(concepts)}): update CONCEPTS in _ext/concept_index.py",
                    location=self.document)
                continue
            entries = [("single", concept, section["ids"][0], "main", None) for concept in concepts]
            section.insert(1, addnodes.index(entries=entries))  # after the title


def setup(app):
    app.add_transform(ConceptIndex)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
