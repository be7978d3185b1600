"""Looking inside a trained network: explain, saliency and adversarial examples, the HTML report, figures.

* :mod:`.explain`: one forward and backward pass of a tiny network, every number checked;
* :mod:`.adversarial`: ``∇ₓC``, saliency maps and fast-gradient-sign examples;
* :mod:`.report`: the self-contained HTML report (its data: :mod:`.report_data`, its figures:
  :mod:`.figures`);
* :mod:`.plots`: the training curves PNG written next to a trained model.
"""
