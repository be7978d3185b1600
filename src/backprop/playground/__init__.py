"""The playground: a local web app in which the library trains a small network on 2-D data and
the page shows the forward and the backward pass (``backprop playground``).

| module | job |
|---|---|
| :mod:`~backprop.playground.data2d` | the 2-D data sets, the input features, a learner's CSV |
| :mod:`~backprop.playground.protocol` | the page's messages, checked; the limits |
| :mod:`~backprop.playground.session` | one page's data, network, optimizer and training step |
| :mod:`~backprop.playground.passes` | one sample's δ, the chain rule, a step, a gradient check |
| :mod:`~backprop.playground.frames` | what the page draws: JSON and heatmaps as bytes |
| :mod:`~backprop.playground.app` | the Starlette app: the page, the token, the WebSocket |

Only :mod:`backprop.cli` imports this package; the server's dependencies (the ``playground``
extra) are imported by :mod:`~backprop.playground.app` alone.
"""
