"""Looking inside a trained network: explain, saliency and adversarial examples, the HTML report, figures."""
