"""Zeiler-Fergus top-N deconvolution: the Captum attribution joined to its dataset pipeline.

For a layer and each of its filters, :meth:`TopNDeconv.top_n` finds the ``N``
images of a dataset with the strongest response (the spatial maximum of the
filter's map), keeps that one activation at its value with every other
activation of the layer set to zero, and projects it back to pixel space with
the deconvnet, guided-backpropagation or plain-gradient rule (paper section
4.3). :meth:`TopNDeconv.attribute` does the same for the images of one batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch

from captum_fau.attr.crops import SizeCheckedModule, paste_window
from captum_fau.attr.topn_attribution import TopNAttribution
from captum_fau.attr.topn_pipeline import TopNOptions, complete, from_scan, top_n, topn_options
from captum_fau.attr.topn_result import TopNResult
from captum_fau.stats.scan import ScanResult

if TYPE_CHECKING:
    from captum_fau.attr.sanity import SanityOptions


class TopNDeconv(TopNAttribution):
    r"""Top-N deconvolution (Zeiler & Fergus 2014; Khorrami et al. 2015, section 4.3).

    Args:
        forward_func, layer, rule, relu_like, device_ids: As for
            :class:`~captum_fau.attr.topn_attribution.TopNAttribution` (the model, the layer whose
            filters are visualised, ``"guided"`` / ``"deconv"`` / ``"gradient"`` / ``"lrp"``, non-ReLU
            activations treated as ReLUs, DataParallel device ids).

    The back-projection itself (:meth:`attribute`, the rules, receptive-field crops and cones) is
    :class:`~captum_fau.attr.topn_attribution.TopNAttribution`; the dataset pipeline behind
    :meth:`top_n`, :meth:`from_scan` and :meth:`complete` is :mod:`captum_fau.attr.topn_pipeline`.

    Examples::

        >>> import torch
        >>> from captum_fau import ZeroBiasCNN
        >>> model = ZeroBiasCNN().eval()
        >>> topn = TopNDeconv(model, model.conv3, rule="deconv")
        >>> topn.attribute(torch.randn(2, 1, 96, 96), filters=[3, 17]).shape
        torch.Size([2, 2, 1, 96, 96])
        >>> res = topn.top_n(torch.randn(20, 1, 96, 96), n=3, filters=[0, 1], progress=False)
        >>> res.indices.shape, res.patches.shape
        (torch.Size([2, 3]), torch.Size([2, 3, 1, 32, 32]))
    """

    # -------------------------------------------------------------------- top_n
    def top_n(self, data: Any, options: TopNOptions | int | None = None, **settings: Any) -> TopNResult:
        r"""Scan ``data`` once, find each filter's top-``n`` images, and reconstruct them.

        Args:
            data: A tensor ``[M, C, H, W]``, a FaceSet or other Dataset, a DataLoader
                or an iterable of batches (see :func:`captum_fau.stats.scan.iter_batches`).
            options (TopNOptions or int, optional): The settings
                (:class:`~captum_fau.attr.topn_pipeline.TopNOptions`); an int is ``n``, as in earlier
                releases. Default: ``TopNOptions()``
            **settings: :class:`~captum_fau.attr.topn_pipeline.TopNOptions` fields as keywords; they
                override ``options``:

                - n (int): Images per filter. Default: 10
                - filters (int, sequence of int or Tensor): Filters to keep. Default: all
                - distinct_images (bool): Each image at most once per filter (its strongest unit), as in
                  the paper. Default: True
                - batch_size (int): Batch size of the scan. Default: 64
                - full_maps (bool): Also keep full-size reconstructions ``[F, n, C, H, W]``. Default: False
                - progress (bool): Show progress bars. Default: True
                - additional_forward_args (Any): Extra model arguments after the inputs.
                - full_image (bool): Back-project on full images (for checks). Default: False

        Returns:
            TopNResult: indices, values, positions, receptive-field patches and boxes.
        """
        if isinstance(options, int) and not isinstance(options, bool):
            options, settings = None, {"n": options, **settings}
        return top_n(self, data, topn_options(options, **settings))

    def from_scan(
        self,
        result: ScanResult,
        filters: Sequence[int] | torch.Tensor | int | None = None,
        full_maps: bool = False,
        progress: bool = True,
        additional_forward_args: Any = None,
        full_image: bool = False,
        reconstruct: Sequence[int] | None = None,
    ) -> TopNResult:
        r"""Reconstruct the top-N of a finished scan, so one pass over the data can also feed
        other analyses (FAU-KL reads the same scan's per-image maxima).

        Args:
            result (ScanResult): From :func:`captum_fau.stats.scan.scan` on this layer with
                ``top_n`` set and ``keep_inputs=True``.
            filters, full_maps, progress, additional_forward_args, full_image: As in :meth:`top_n`.
            reconstruct (sequence of int, optional): Reconstruct only these of the searched
                filters now; the others are kept in the result's ``pending`` (their top-N images
                and units, no reconstructions) for :meth:`complete`. Default: None (all)

        Under ``torch.distributed`` (a scan made on every rank of a process group), each
        rank reconstructs a contiguous share of the filters and every rank receives the
        whole result, equal to a single-process one.

        Returns:
            TopNResult
        """
        return from_scan(self, result, TopNOptions(
            filters=filters, reconstruct=reconstruct, full_maps=full_maps, progress=progress,
            additional_forward_args=additional_forward_args, full_image=full_image,
        ))  # fmt: skip

    def complete(
        self,
        result: TopNResult,
        data: Any,
        filters: Sequence[int] | None = None,
        progress: bool = True,
        additional_forward_args: Any = None,
        checkpoint: Any = None,
    ) -> TopNResult:
        r"""Reconstruct filters a result left pending (see ``reconstruct`` in :meth:`from_scan`).

        Args:
            result (TopNResult): A result of this layer and rule with ``pending`` filters.
            data (Tensor or Dataset): The images (as the model gets them) its indices refer to.
            filters (sequence of int, optional): The pending filters to reconstruct. Default: all
            progress (bool, optional): Show a progress bar. Default: True
            additional_forward_args (Any, optional): Extra model arguments after the inputs.
            checkpoint (callable, optional): Called with the growing result after every 16
                filters, e.g. ``lambda r: r.save(folder)``, so that a killed run resumes. Default: None

        Returns:
            TopNResult: with those filters reconstructed and removed from ``pending``.

        Examples::

            >>> import torch
            >>> from captum_fau import ZeroBiasCNN
            >>> model = ZeroBiasCNN().eval()
            >>> topn = TopNDeconv(model, "conv3")
            >>> images = torch.randn(12, 1, 96, 96)
            >>> from captum_fau.stats.scan import scan
            >>> found = scan(model, "conv3", images, top_n=2, keep_inputs=True, progress=False)
            >>> res = topn.from_scan(found, filters=[0, 1, 2], reconstruct=[1], progress=False)
            >>> res.filters.tolist(), res.pending_filters
            ([1], [0, 2])
            >>> topn.complete(res, images, progress=False).filters.tolist()
            [0, 1, 2]
        """
        return complete(self, result, data, filters,
                        TopNOptions(progress=progress, additional_forward_args=additional_forward_args),
                        checkpoint)  # fmt: skip

    def sanity_check(
        self,
        result_or_scan: Any,
        data: Any = None,
        options: SanityOptions | None = None,
        *,
        progress: bool = True,
        additional_forward_args: Any = None,
        **settings: Any,
    ) -> Any:
        r"""Model-randomisation check (Adebayo et al., 2018): how much of the reconstructions depends on the weights.

        The reconstructions of the same top-N ``(image, unit)`` pairs are recomputed in a deep copy
        of the model whose weights are randomised in a cascade from the analysed layer down to the
        first weighted layer (and, with ``independent``, one layer at a time), and compared with the
        trained model's (``result``'s own patches, not recomputed) by SSIM and by the Spearman
        correlation of ``|reconstruction|``. Layers after the analysed one cannot change the
        reconstruction of its units and are left alone. See :mod:`captum_fau.attr.sanity`. The
        model itself is not modified.

        Args:
            result_or_scan (TopNResult or ScanResult): A result of this layer and rule (then
                ``data`` gives the images), or a scan made with ``top_n`` and ``keep_inputs=True``.
            data (Tensor or Dataset, optional): The images the result's indices refer to.
            options (SanityOptions, optional): The settings (:class:`~captum_fau.attr.sanity.SanityOptions`).
                Default: ``SanityOptions()``
            progress (bool, optional): Show a progress bar. Default: True
            additional_forward_args (Any, optional): Extra model arguments after the inputs.
            **settings: :class:`~captum_fau.attr.sanity.SanityOptions` fields as keywords; they override
                ``options``:

                - n (int or None): Top-N ranks checked per filter. Default: 3
                - filters (sequence of int): Filters to check. Default: all of the result, or the
                  selection of ``max_filters``
                - seed (int): Seed of the random weights and of the filter sample. Default: 0
                - independent (bool): Also randomise each layer on its own. Default: True
                - max_filters (int): Check at most this many live filters: the ``featured`` ones first,
                  then a seeded sample of the others (:func:`~captum_fau.attr.sanity.select_filters`;
                  the choice is recorded in ``meta["selection"]``). Default: None (all)
                - featured (sequence of int): Filters ``max_filters`` includes first (those a report
                  shows). Default: None
                - keep_reconstructions (bool): Keep the randomised reconstructions in the result
                  (``reconstructions``). Default: False

        Returns:
            SanityCheckResult: per-step similarity arrays, a summary and an interpretation.

        Examples::

            >>> import torch
            >>> from captum_fau import ZeroBiasCNN
            >>> model = ZeroBiasCNN().eval()
            >>> topn = TopNDeconv(model, "conv2", rule="guided")
            >>> images = torch.randn(8, 1, 96, 96, generator=torch.Generator().manual_seed(0))
            >>> res = topn.top_n(images, n=2, filters=[0, 1], progress=False)
            >>> check = topn.sanity_check(res, images, progress=False)
            >>> [s["randomised"] for s in check.steps]
            [['conv2'], ['conv2', 'conv1'], ['conv1']]
            >>> check.ssim.shape
            (3, 2, 2)
        """
        from captum_fau.attr.sanity import sanity_check

        return sanity_check(
            self,
            result_or_scan,
            data,
            options,
            progress=progress,
            additional_forward_args=additional_forward_args,
            **settings,
        )


__all__ = ["SizeCheckedModule", "TopNDeconv", "paste_window"]
